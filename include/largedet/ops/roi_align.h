// RoIAlign (Mask R-CNN) forward and backward on CPU and CUDA, as an autograd function, and
// MultiScaleRoIAlign over FPN levels. Numerics follow torchvision's kernels (same sampling points,
// same border rules, same accumulation order on the CPU).
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace largedet::ops {

struct RoIAlignOptions {
  int64_t output_height = 7;
  int64_t output_width = 7;
  double spatial_scale = 1.0;  // feature-map pixels per input pixel, e.g. 1/16
  // Sampling points per bin side; <= 0 means adaptive: ceil(roi size / output size).
  int64_t sampling_ratio = -1;
  // true: pixel centres at +0.5 (Detectron2 ROIAlignV2); false: the original Mask R-CNN rule
  // (RoIs at least 1x1), which torchvision's MultiScaleRoIAlign uses.
  bool aligned = false;
};

// input [N, C, H, W], NCHW or channels-last (read in place, never copied to NCHW); rois [K, 5] rows
// (batch index, x1, y1, x2, y2) in input-image pixels. Returns [K, C, output_height, output_width]
// in the input's memory format; differentiable with respect to input, the gradient again in the
// input's memory format. The same on CPU and CUDA.
at::Tensor roi_align(const at::Tensor& input, const at::Tensor& rois,
                     const RoIAlignOptions& options);
// The same with RoIs given per image as [K_i, 4] boxes.
at::Tensor roi_align(const at::Tensor& input, const std::vector<at::Tensor>& boxes,
                     const RoIAlignOptions& options);

// The most feature maps roi_align_levels takes (FPN has 4 or 5).
inline constexpr size_t kMaxRoIAlignLevels = 8;

// RoIAlign of each RoI on the feature map its level names, for all levels in one launch, so that
// nothing is read back to the host (MultiScaleRoIAlign's pooling): features[l] [N, C, H_l, W_l]
// (the same N, C, dtype, device and memory format), spatial_scales[l] its scale, levels [K] int64
// in [0, L) on the features' device (undefined: every RoI on level 0). RoI k's output equals
// roi_align(features[levels[k]], rois[k], scale of that level), bit for bit; the gradient flows to
// every level. options.spatial_scale is not used.
at::Tensor roi_align_levels(const std::vector<at::Tensor>& features, const at::Tensor& rois,
                            const at::Tensor& levels, const std::vector<double>& spatial_scales,
                            const RoIAlignOptions& options);

// Concatenates per-image [K_i, 4] boxes into [sum K_i, 5] rows (batch index, x1, y1, x2, y2).
at::Tensor boxes_to_rois(const std::vector<at::Tensor>& boxes);
// The same for a batch [B, K, 4] of K boxes per image: [B * K, 5], image by image.
at::Tensor boxes_to_rois(const at::Tensor& boxes);

// The raw kernels (no autograd): forward (output in the input's memory format), and the gradient
// with respect to the input of shape (batch, channels, height, width), in memory_format
// (Contiguous, i.e. NCHW, or ChannelsLast).
at::Tensor roi_align_forward(const at::Tensor& input, const at::Tensor& rois,
                             const RoIAlignOptions& options);
at::Tensor roi_align_backward(const at::Tensor& grad_output, const at::Tensor& rois,
                              const RoIAlignOptions& options, int64_t batch, int64_t channels,
                              int64_t height, int64_t width,
                              at::MemoryFormat memory_format = at::MemoryFormat::Contiguous);
// The same over levels (as roi_align_levels): the gradient of each feature map, of shapes[l].
at::Tensor roi_align_forward(const std::vector<at::Tensor>& features, const at::Tensor& rois,
                             const at::Tensor& levels, const std::vector<double>& spatial_scales,
                             const RoIAlignOptions& options);
std::vector<at::Tensor> roi_align_backward(const at::Tensor& grad_output, const at::Tensor& rois,
                                           const at::Tensor& levels,
                                           const std::vector<double>& spatial_scales,
                                           const RoIAlignOptions& options,
                                           const std::vector<std::vector<int64_t>>& shapes,
                                           at::MemoryFormat memory_format);

// Maps RoIs to FPN levels by the FPN paper's rule (eq. 1):
//   level = floor(canonical_level + log2(sqrt(area) / canonical_scale) + 1e-6),
// clamped to [k_min, k_max]; returns level - k_min (int64, [K]), as torchvision's LevelMapper.
at::Tensor map_rois_to_levels(const at::Tensor& boxes, int64_t k_min, int64_t k_max,
                              int64_t canonical_scale = 224, int64_t canonical_level = 4);

// torchvision's MultiScaleRoIAlign: the scale of each feature map is inferred from its size against
// the largest image (a power of two), each RoI is pooled from the level map_rois_to_levels picks.
class MultiScaleRoIAlign {
 public:
  MultiScaleRoIAlign(int64_t output_size, int64_t sampling_ratio, int64_t canonical_scale = 224,
                     int64_t canonical_level = 4, bool aligned = false);

  // features[l]: [N, C, H_l, W_l], finest first; boxes[i]: [K_i, 4] of image i; image_sizes[i]:
  // (height, width) of image i before padding. Returns [sum K_i, C, output_size, output_size].
  at::Tensor operator()(const std::vector<at::Tensor>& features,
                        const std::vector<at::Tensor>& boxes,
                        const std::vector<std::pair<int64_t, int64_t>>& image_sizes) const;
  // boxes [B, K, 4]: K boxes of each image. Returns [B * K, C, output_size, output_size].
  at::Tensor operator()(const std::vector<at::Tensor>& features, const at::Tensor& boxes,
                        const std::vector<std::pair<int64_t, int64_t>>& image_sizes) const;
  // rois [K, 5] rows (batch index, x1, y1, x2, y2), as boxes_to_rois gives them.
  at::Tensor pool_rois(const std::vector<at::Tensor>& features, const at::Tensor& rois,
                       const std::vector<std::pair<int64_t, int64_t>>& image_sizes) const;

  // The scales (1 / stride) inferred as torchvision does.
  static std::vector<double> infer_scales(const std::vector<at::Tensor>& features,
                                          const std::vector<std::pair<int64_t, int64_t>>& sizes);

 private:
  int64_t output_size_, sampling_ratio_, canonical_scale_, canonical_level_;
  bool aligned_;
};

}  // namespace largedet::ops
