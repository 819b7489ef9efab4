#include "largedet/modeling/target_batch.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "largedet/core/error.h"
#include "largedet/ops/boxes.h"
#include "largedet/ops/host_sync.h"

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
  const auto count =
      ops::upload(at::tensor(counts, at::kLong), boxes.device(), "target boxes per image");
  valid = at::arange(boxes.size(1), count.options()).unsqueeze(0) < count.unsqueeze(1);
}

torch::Tensor TargetBatch::match(const ops::Matcher& matcher, const torch::Tensor& other) const {
  const int64_t n = num_images(), g = most(), p = other.size(1);
  LARGEDET_CHECK(
      other.dim() == 3 && other.size(2) == 4 && (other.size(0) == 1 || other.size(0) == n),
      "TargetBatch::match: expected boxes [1 or ", n, ", P, 4], got ", other.sizes());
  if (g == 0)
    return torch::full({n, p}, ops::Matcher::kBelowLowThreshold,
                       other.options().dtype(torch::kLong));
  // The quality matrices of as many images at a time as fit the workspace: matching all images
  // at once must not need much more memory than image by image did (at 8 images of 800 x 1333
  // with 50 boxes each, their [N, G, anchors] IoU alone would be 430 MB), and at the usual sizes
  // one chunk holds every image, so the op count stays constant.
  constexpr int64_t kWorkspace = int64_t{1} << 25;  // elements per chunk's matrix
  const int64_t per_chunk = std::max<int64_t>(1, kWorkspace / std::max<int64_t>(1, g * p));
  std::vector<torch::Tensor> parts;
  for (int64_t start = 0; start < n; start += per_chunk) {
    const int64_t k = std::min(per_chunk, n - start);
    const auto mine = other.size(0) == 1 ? other : other.narrow(0, start, k);
    auto quality = ops::box_iou(boxes.narrow(0, start, k), mine)
                       .masked_fill_(valid.narrow(0, start, k).logical_not().unsqueeze(2), -1.0);
    parts.push_back(matcher(quality));
  }
  return parts.size() == 1 ? parts[0] : torch::cat(parts, 0);
}

torch::Tensor TargetBatch::matched_boxes(const torch::Tensor& index) const {
  if (most() == 0) return torch::zeros({index.size(0), index.size(1), 4}, boxes.options());
  return boxes.gather(1, index.unsqueeze(2).expand({-1, -1, 4}));
}

torch::Tensor TargetBatch::matched_labels(const torch::Tensor& index) const {
  if (most() == 0) return torch::zeros_like(index);
  return labels.gather(1, index);
}

}  // namespace largedet::modeling
