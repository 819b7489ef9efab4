// The precompiled header of the Torch-heavy sources (see cmake/LargeDetLayer.cmake).
#pragma once
#include <ATen/ATen.h>
#include <torch/torch.h>
