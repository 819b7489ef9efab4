// Pastes per-detection masks (e.g. Mask R-CNN's 28x28 class masks) into the image at their boxes.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace largedet::ops {

// masks: [N, M, M] or [N, 1, M, M] probabilities (any M x M' size); boxes: [N, 4] xyxy in image
// pixels. torchvision's paste_masks_in_image, which the Mask R-CNN parity with torchvision relies
// on: each mask padded with a zero border of one cell, its box grown by (M' + 2) / M' about the
// centre and truncated to integers, the padded mask resized bilinearly (align_corners=false) to
// that integer box (both ends included) and copied into the image; pixels outside are 0.
// threshold >= 0: returns bool [N, height, width], prob >= threshold; threshold < 0: float probs.
// Runs on the tensors' device; nothing is read back to the host.
at::Tensor paste_masks_in_image(const at::Tensor& masks, const at::Tensor& boxes, int64_t height,
                                int64_t width, double threshold = 0.5);

}  // namespace largedet::ops

namespace largedet::ops::detail {
// The implementation used for non-CPU tensors (it runs on any device; tests compare it with the
// CPU kernel). masks [N, M, M'] float, boxes [N, 4] float.
at::Tensor paste_masks_in_image_aten(const at::Tensor& masks, const at::Tensor& boxes,
                                     int64_t height, int64_t width, double threshold);
}  // namespace largedet::ops::detail
