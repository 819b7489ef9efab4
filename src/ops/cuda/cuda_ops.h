// Entry points of the CUDA kernels (src/ops/cuda/*.cu), called by the device dispatch in
// src/ops/*.cpp only when the build has CUDA (LARGEDET_WITH_CUDA). Private to the ops layer.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace largedet::ops::cuda {

// idxs: undefined for plain NMS, or [N] int64 categories (batched NMS). Kept indices (int64, on the
// boxes' device) by descending score, ties in index order.
at::Tensor nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs,
               double iou_threshold);

// ops::segmented_nms on CUDA tensors (boxes float or double, scores of the same, idxs int64 or
// undefined, valid bool, all contiguous): fills keep and kept ([B, max_keep], zeroed) on the
// device.
void segmented_nms(const at::Tensor& boxes, const at::Tensor& scores, const at::Tensor& idxs,
                   const at::Tensor& valid, double iou_threshold, at::Tensor& keep,
                   at::Tensor& kept);

// memory_format: Contiguous (NCHW) or ChannelsLast. The forward takes the levels' inputs
// contiguous in it and returns the output in it; the backward takes grad in any layout and returns
// each level's gradient (of shapes[l]) in it. levels: [K] int64 on the device, or undefined (all
// RoIs on level 0).
at::Tensor roi_align_forward(const std::vector<at::Tensor>& inputs, const at::Tensor& rois,
                             const at::Tensor& levels, const std::vector<double>& scales,
                             int64_t pooled_height, int64_t pooled_width, int64_t sampling_ratio,
                             bool aligned, at::MemoryFormat memory_format);
std::vector<at::Tensor> roi_align_backward(const at::Tensor& grad, const at::Tensor& rois,
                                           const at::Tensor& levels,
                                           const std::vector<double>& scales, int64_t pooled_height,
                                           int64_t pooled_width,
                                           const std::vector<std::vector<int64_t>>& shapes,
                                           int64_t sampling_ratio, bool aligned,
                                           at::MemoryFormat memory_format);

}  // namespace largedet::ops::cuda
