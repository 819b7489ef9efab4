// Non-maximum suppression on CPU (our kernel) and CUDA (our kernel) tensors.
#pragma once

#include <ATen/ATen.h>

namespace largedet::ops {

// Greedy NMS of boxes [N, 4] (xyxy) with scores [N]: visits the boxes by descending score (ties in
// index order, a stable sort, as torchvision) and drops every later box whose IoU with a kept box
// is > iou_threshold. Returns the kept indices (int64) in that order.
at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, double iou_threshold);

// NMS within each category idxs [N] (int64): boxes of different categories never suppress each
// other. Returns the kept indices by descending score, ties in index order. The kernel compares the
// categories directly, so the IoUs are exactly those of nms() (no coordinate offsets).
at::Tensor batched_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs,
                       double iou_threshold);

}  // namespace largedet::ops
