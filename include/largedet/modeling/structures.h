// The types every part of the modeling layer passes around: ground truth (Target), results
// (Detections), named losses (LossMap), image sizes and the preprocessed batch (ImageList).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "largedet/ops/host_sync.h"

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

// [N, 2] int64 (height, width) per image on `device`, for the ops that take every image at once.
inline torch::Tensor image_sizes_tensor(const ImageSizes& sizes, torch::Device device) {
  std::vector<int64_t> flat;
  for (const auto& [h, w] : sizes) flat.insert(flat.end(), {h, w});
  return ops::upload(torch::tensor(flat, torch::kLong).view({-1, 2}), device, "image sizes");
}

// The RPN's proposals of a micro-batch, padded to the same number per image so that the ROI heads
// take them without reading a count back from the device.
struct Proposals {
  torch::Tensor boxes;  // [N, P, 4] float xyxy, no gradient
  torch::Tensor valid;  // [N, P] bool: the row holds a proposal (the rest is padding)
  // Each image's proposals [P_i, 4], in order: a host synchronisation per image, for tests and
  // tools.
  std::vector<torch::Tensor> per_image() const {
    std::vector<torch::Tensor> out;
    for (int64_t i = 0; i < boxes.size(0); ++i)
      out.push_back(boxes[i].masked_select(valid[i].unsqueeze(1)).view({-1, 4}));
    return out;
  }
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
