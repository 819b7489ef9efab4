// at::parallel_for for LargeDet's own CPU loops. It is a header template whose parallel branch
// exists only where the including source is compiled with OpenMP; without -fopenmp every loop
// silently runs on one thread, whatever at::set_num_threads says (ours did, until the build gave
// OpenMP::OpenMP_CXX to everything that links Torch). Include this instead of <ATen/Parallel.h>:
// it makes that mistake a compile error.
#pragma once

#include <ATen/Parallel.h>

#ifndef _OPENMP
#error "compile with OpenMP (link OpenMP::OpenMP_CXX), or at::parallel_for runs serially"
#endif
