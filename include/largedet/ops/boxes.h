// Box utilities on [N, 4] tensors. Boxes are (x1, y1, x2, y2) in absolute pixels
// (docs/architecture.md, "Conventions"); the other formats exist for the edges (COCO JSON is
// xywh, box regression works in cxcywh).
// All functions work on CPU and CUDA tensors (they are composed of ATen ops).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace largedet::ops {

enum class BoxFormat { kXYXY, kXYWH, kCXCYWH };

// Box geometry runs in float32 or wider whatever the features' dtype: half overflows past 65504
// (a 256 x 256 area), and half or bfloat16 coordinates are 0.5-8 px apart above 512 px
// (docs/modeling.md, "Precision"). float and double are kept, anything narrower becomes float.
at::ScalarType geometry_dtype(at::ScalarType features);
// The one dtype two box tensors are combined in: their promotion, at least float32.
at::ScalarType geometry_dtype(const at::Tensor& a, const at::Tensor& b);
// `boxes` in geometry_dtype (the same tensor when it is already).
at::Tensor to_geometry_dtype(const at::Tensor& boxes);

// (x2 - x1) * (y2 - y1) per box, [N] (or [B, N]), in geometry_dtype (as torchvision upcasts).
// Inverted boxes give negative areas, as in torchvision.
at::Tensor box_area(const at::Tensor& boxes);

// Pairwise IoU of [N, 4] and [M, 4] boxes, [N, M], in geometry_dtype; per image for a batch,
// [B, N, 4] and [B, M, 4] (or [1, M, 4], shared) give [B, N, M]. A pair whose intersection is
// empty (this includes every pair with a zero-area or inverted box) has IoU 0, never NaN
// (detectron2's convention).
at::Tensor box_iou(const at::Tensor& boxes1, const at::Tensor& boxes2);

// Clamps x to [0, width] and y to [0, height]; returns a new tensor in geometry_dtype.
at::Tensor clip_boxes_to_image(const at::Tensor& boxes, int64_t height, int64_t width);

// The same for a batch [B, N, 4] of images of sizes [B, 2] (height, width; any dtype, on the
// boxes' device), in one pass: no loop over images.
at::Tensor clip_boxes_to_images(const at::Tensor& boxes, const at::Tensor& image_sizes);

// Whether each box's width and height are both >= min_size, [N] (or [B, N]) bool.
at::Tensor box_size_at_least(const at::Tensor& boxes, double min_size);
// Indices (int64, ascending) of the boxes whose width and height are both >= min_size.
at::Tensor remove_small_boxes(const at::Tensor& boxes, double min_size);

// Converts between formats; returns a new tensor (a copy when in == out).
at::Tensor box_convert(const at::Tensor& boxes, BoxFormat in, BoxFormat out);

}  // namespace largedet::ops
