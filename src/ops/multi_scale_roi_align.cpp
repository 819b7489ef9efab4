// MultiScaleRoIAlign and the FPN level mapping: the levels computed on the device, the pooling one
// roi_align_levels over all of them (autograd flows back to each level's features).
#include <cmath>

#include "largedet/core/error.h"
#include "largedet/ops/boxes.h"
#include "largedet/ops/roi_align.h"

namespace largedet::ops {

at::Tensor map_rois_to_levels(const at::Tensor& boxes, int64_t k_min, int64_t k_max,
                              int64_t canonical_scale, int64_t canonical_level) {
  LARGEDET_CHECK(k_min <= k_max, "map_rois_to_levels: k_min ", k_min, " > k_max ", k_max);
  auto s = at::sqrt(box_area(boxes));
  // torchvision's LevelMapper, op for op (eps 1e-6 guards exact powers of two).
  auto levels = at::floor(canonical_level + at::log2(s / static_cast<double>(canonical_scale)) +
                          at::scalar_tensor(1e-6, s.options()));
  levels = at::clamp(levels, static_cast<double>(k_min), static_cast<double>(k_max));
  return levels.to(at::kLong) - k_min;
}

MultiScaleRoIAlign::MultiScaleRoIAlign(int64_t output_size, int64_t sampling_ratio,
                                       int64_t canonical_scale, int64_t canonical_level,
                                       bool aligned)
    : output_size_(output_size),
      sampling_ratio_(sampling_ratio),
      canonical_scale_(canonical_scale),
      canonical_level_(canonical_level),
      aligned_(aligned) {
  LARGEDET_CHECK(output_size > 0, "MultiScaleRoIAlign: output size ", output_size, " must be > 0");
  LARGEDET_CHECK(canonical_scale > 0, "MultiScaleRoIAlign: canonical scale must be > 0");
}

std::vector<double> MultiScaleRoIAlign::infer_scales(
    const std::vector<at::Tensor>& features,
    const std::vector<std::pair<int64_t, int64_t>>& image_sizes) {
  LARGEDET_CHECK(!image_sizes.empty(), "MultiScaleRoIAlign: no image sizes");
  int64_t max_h = 0;
  for (auto [h, w] : image_sizes) max_h = std::max(max_h, h);
  LARGEDET_CHECK(max_h > 0, "MultiScaleRoIAlign: images of height 0");
  std::vector<double> scales;
  for (const auto& f : features) {
    // torchvision: 2 ** round(log2(feature / image)) in float32, from the heights.
    const float approx =
        static_cast<float>(static_cast<double>(f.size(-2)) / static_cast<double>(max_h));
    scales.push_back(std::exp2(std::nearbyint(std::log2(approx))));
  }
  return scales;
}

at::Tensor MultiScaleRoIAlign::operator()(
    const std::vector<at::Tensor>& features, const std::vector<at::Tensor>& boxes,
    const std::vector<std::pair<int64_t, int64_t>>& image_sizes) const {
  return pool_rois(features, boxes_to_rois(boxes), image_sizes);
}

at::Tensor MultiScaleRoIAlign::operator()(
    const std::vector<at::Tensor>& features, const at::Tensor& boxes,
    const std::vector<std::pair<int64_t, int64_t>>& image_sizes) const {
  return pool_rois(features, boxes_to_rois(boxes), image_sizes);
}

at::Tensor MultiScaleRoIAlign::pool_rois(
    const std::vector<at::Tensor>& features, const at::Tensor& rois_in,
    const std::vector<std::pair<int64_t, int64_t>>& image_sizes) const {
  LARGEDET_CHECK(!features.empty(), "MultiScaleRoIAlign: no feature maps");
  for (const auto& f : features)
    LARGEDET_CHECK(f.dim() == 4 && f.size(1) == features[0].size(1),
                   "MultiScaleRoIAlign: feature maps must be [N, C, H, W] with the same C, got ",
                   f.sizes());
  const auto scales = infer_scales(features, image_sizes);
  // The RoIs stay in geometry_dtype: the kernels read reduced-precision features with float
  // coordinates, and the level mapping sees the boxes unrounded.
  auto rois = to_geometry_dtype(rois_in);
  RoIAlignOptions options{output_size_, output_size_, scales[0], sampling_ratio_, aligned_};
  if (features.size() == 1) return roi_align(features[0], rois, options);

  const auto k_min = static_cast<int64_t>(-std::log2(scales.front()));
  const auto k_max = static_cast<int64_t>(-std::log2(scales.back()));
  LARGEDET_CHECK(k_max - k_min + 1 == static_cast<int64_t>(features.size()),
                 "MultiScaleRoIAlign: ", features.size(), " feature maps but scales 1/",
                 1 / scales.front(), " .. 1/", 1 / scales.back(),
                 " do not form consecutive power-of-two levels");
  auto levels =
      map_rois_to_levels(rois.narrow(1, 1, 4), k_min, k_max, canonical_scale_, canonical_level_);
  // All levels in one launch, each RoI reading its own: nothing is read back to the host.
  return roi_align_levels(features, rois, levels, scales, options);
}

}  // namespace largedet::ops
