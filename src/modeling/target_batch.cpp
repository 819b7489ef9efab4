#include "largedet/modeling/target_batch.h"

#include <ATen/ATen.h>

#include "largedet/core/error.h"
#include "largedet/ops/boxes.h"

namespace largedet::modeling {

TargetBatch::TargetBatch(const std::vector<Target>& targets) : images(targets) {
  LARGEDET_CHECK(!targets.empty(), "TargetBatch: no images");
  std::vector<at::Tensor> boxes_list, labels_list;
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto& t = targets[i];
    LARGEDET_CHECK(t.boxes.dim() == 2 && t.boxes.size(1) == 4, "Detector: image ", i,
                   " target boxes are not [N, 4]: ", t.boxes.sizes());
    LARGEDET_CHECK(t.labels.dim() == 1 && t.labels.size(0) == t.boxes.size(0), "Detector: image ",
                   i, " has ", t.boxes.size(0), " target boxes but labels of shape ",
                   t.labels.sizes());
    counts.push_back(t.boxes.size(0));
    boxes_list.push_back(ops::to_geometry_dtype(t.boxes));
    labels_list.push_back(t.labels.to(at::kLong));
  }
  boxes = at::pad_sequence(boxes_list, /*batch_first=*/true);
  labels = at::pad_sequence(labels_list, /*batch_first=*/true);
  const auto count = at::tensor(counts, at::kLong).to(boxes.device(), /*non_blocking=*/true);
  valid = at::arange(boxes.size(1), count.options()).unsqueeze(0) < count.unsqueeze(1);
}

torch::Tensor TargetBatch::iou(const torch::Tensor& other) const {
  return ops::box_iou(boxes, other).masked_fill_(valid.logical_not().unsqueeze(2), -1.0);
}

torch::Tensor TargetBatch::matched_boxes(const torch::Tensor& index) const {
  return boxes.gather(1, index.unsqueeze(2).expand({-1, -1, 4}));
}

torch::Tensor TargetBatch::matched_labels(const torch::Tensor& index) const {
  return labels.gather(1, index);
}

}  // namespace largedet::modeling
