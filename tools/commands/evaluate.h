// `largedet evaluate`'s arguments, shared by its Torch-free part (evaluate.cpp: files) and its
// LibTorch part (evaluate_model.cpp: --config mode, in largedet-torch only).
#pragma once

#include <string>
#include <vector>

#include "largedet/core/limits.h"

namespace largedet::tools {

struct EvaluateArgs {
  std::string annotations, results, labels, hierarchy, classes, protocol = "challenge", output;
  std::string detections;  // --config mode
  std::string config, weights;
  std::vector<std::string> overrides;
  std::vector<std::string> types = {"bbox"};
  int threads = 0;
  int64_t max_image_pixels = largedet::kDefaultMaxImagePixels;
  bool per_category = false;
};

}  // namespace largedet::tools
