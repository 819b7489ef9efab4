// The types every part of the modeling layer passes around: ground truth (Target), results
// (Detections), named losses (LossMap), image sizes and the preprocessed batch (ImageList).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace largedet::modeling {

using ImageSizes = std::vector<std::pair<int64_t, int64_t>>;  // (height, width) per image
using LossMap = std::map<std::string, torch::Tensor>;

// Ground truth of one image in the network's input coordinates.
struct Target {
  torch::Tensor boxes;   // [N, 4] float xyxy
  torch::Tensor labels;  // [N] int64, 1..K (0 is background)
  torch::Tensor masks;   // [N, H, W] uint8/bool/float bitmaps, or undefined
  // Or, as the loader sends them: [N, E, 3] outline edges (ops/mask_targets.h). Bitmaps give
  // torchvision's targets (RoIAlign of the bitmap), edges the mask at each bin centre.
  torch::Tensor mask_edges;
};

// Per-image detections, in the coordinates the caller asked for.
struct Detections {
  torch::Tensor boxes;   // [D, 4] float xyxy
  torch::Tensor scores;  // [D]
  torch::Tensor labels;  // [D] int64, 1..K
  torch::Tensor masks;   // Mask R-CNN: [D, 1, 28, 28] probabilities from the heads; after
                         // Detector::detect, [D, 1, H, W] probabilities pasted into the image
};

// A batch as the network sees it: normalised images padded to a common size, and each image's
// size before padding.
struct ImageList {
  torch::Tensor tensor;    // [B, 3, H, W] float
  ImageSizes image_sizes;  // (height, width) per image, <= (H, W)
};

}  // namespace largedet::modeling
