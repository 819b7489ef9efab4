// The modeling layer's public API in one include: the Detector interface and both detectors,
// their builders from the configuration, the preprocessing, and weights I/O. Each part has its own
// header (docs/modeling.md, "Headers"); this one only gathers what users of the layer (the engine,
// the tools, a consumer project) call.
#pragma once

#include "largedet/modeling/build.h"
#include "largedet/modeling/meta_arch/detector.h"
#include "largedet/modeling/meta_arch/generalized_rcnn.h"
#include "largedet/modeling/meta_arch/retinanet.h"
#include "largedet/modeling/structures.h"
#include "largedet/modeling/transform.h"
#include "largedet/modeling/weights.h"
