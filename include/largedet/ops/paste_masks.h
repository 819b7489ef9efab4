// Pastes per-detection masks (e.g. Mask R-CNN's 28x28 class masks) into the image at their boxes.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace largedet::ops {

// masks: [N, M, M] or [N, 1, M, M] probabilities (any M x M' size); boxes: [N, 4] xyxy in image
// pixels. Each image pixel centre (x + 0.5, y + 0.5) inside a box samples its mask bilinearly, the
// mask covering the box exactly and reading 0 outside (detectron2's paste_masks_in_image, i.e.
// grid_sample with align_corners=false and zero padding); pixels outside the box are 0.
// threshold >= 0: returns bool [N, height, width], prob >= threshold; threshold < 0: float probs.
at::Tensor paste_masks_in_image(const at::Tensor& masks, const at::Tensor& boxes, int64_t height,
                                int64_t width, double threshold = 0.5);

}  // namespace largedet::ops

namespace largedet::ops::detail {
// The grid_sample implementation used for CUDA tensors (it runs on any device; tests compare it
// with the CPU kernel). masks [N, M, M'] float, boxes [N, 4] float.
at::Tensor paste_masks_in_image_aten(const at::Tensor& masks, const at::Tensor& boxes,
                                     int64_t height, int64_t width, double threshold);
}  // namespace largedet::ops::detail
