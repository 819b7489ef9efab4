// Non-maximum suppression on CPU (our kernel) and CUDA (our kernel) tensors.
#pragma once

#include <ATen/ATen.h>

#include <utility>

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

// NMS within each row of a batch, independently (a row's boxes never suppress another row's), in
// one launch for all rows: boxes [B, N, 4], scores [B, N], idxs [B, N] int64 categories (as
// batched_nms; undefined: none), valid [B, N] bool (an invalid box is neither kept nor suppresses
// any). Returns (keep [B, max_keep] int64 indices into N, each row's survivors by descending
// score, ties in index order, then zeros; kept [B, max_keep] bool, true where keep holds a
// survivor). Its sizes do not depend on the values, so nothing is read back to the host, and the
// work and memory grow with B x N^2, not (B x N)^2 as one NMS over the rows concatenated would.
std::pair<at::Tensor, at::Tensor> segmented_nms(const at::Tensor& boxes, const at::Tensor& scores,
                                                const at::Tensor& idxs, const at::Tensor& valid,
                                                double iou_threshold, int64_t max_keep);

}  // namespace largedet::ops
