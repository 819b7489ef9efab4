// The ground truth of a micro-batch as one padded tensor per field, so that matching, encoding and
// the losses run over all images at once instead of image by image (docs/modeling.md, "Host
// synchronisations").
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "largedet/modeling/structures.h"
#include "largedet/ops/matcher.h"

namespace largedet::modeling {

struct TargetBatch {
  // Pads every image's boxes and labels to the most boxes of any image (G), on the targets'
  // device. The sizes are the tensors' own, known on the host: nothing is read back.
  explicit TargetBatch(const std::vector<Target>& targets);

  torch::Tensor boxes;                // [N, G, 4] float xyxy, zero rows past each image's boxes
  torch::Tensor labels;               // [N, G] int64, 0 past each image's boxes
  torch::Tensor valid;                // [N, G] bool: the row holds a box
  std::vector<int64_t> counts;        // boxes per image
  const std::vector<Target>& images;  // the per-image targets (masks), which must outlive this

  int64_t num_images() const { return static_cast<int64_t>(counts.size()); }
  int64_t most() const { return boxes.size(1); }  // G
  // matcher's result [N, P] for proposals or anchors [N or 1, P, 4] (shared by every image): the
  // IoU with the padded rows set to -1, which match nothing; every prediction is background where
  // an image (or the batch) has no box.
  torch::Tensor match(const ops::Matcher& matcher, const torch::Tensor& boxes) const;
  // The boxes (or labels) of each image's matched ground truth, index [N, P] int64 >= 0 (zeros
  // when no image has a box).
  torch::Tensor matched_boxes(const torch::Tensor& index) const;
  torch::Tensor matched_labels(const torch::Tensor& index) const;
};

}  // namespace largedet::modeling
