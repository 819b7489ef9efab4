// AnchorGenerator: anchors over the feature grids of one or more (FPN) levels, with the values and
// the order of torchvision's AnchorGenerator, so that RPN weights trained there decode the same
// here: per level, locations in row-major order (y, then x), and at each location the cell anchors
// in (aspect ratio, size) order, the size varying fastest.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

namespace largedet::ops {

class AnchorGenerator {
 public:
  // sizes[l] and aspect_ratios[l] (height / width) of level l. A single aspect-ratio list is used
  // for every level. E.g. FPN: sizes {{32}, {64}, {128}, {256}, {512}}, ratios {{0.5, 1, 2}}.
  AnchorGenerator(std::vector<std::vector<double>> sizes,
                  std::vector<std::vector<double>> aspect_ratios);

  int64_t num_levels() const { return static_cast<int64_t>(sizes_.size()); }
  // Anchors per location of level l.
  int64_t num_anchors_per_location(int64_t level) const;

  // The [A, 4] anchors centred on (0, 0) of level l, rounded to integers as torchvision does;
  // computed on the host and sent to `device` (ops::upload).
  at::Tensor cell_anchors(int64_t level, at::ScalarType dtype = at::kFloat,
                          at::Device device = at::kCPU) const;

  // Anchors of all levels concatenated, [sum_l H_l * W_l * A_l, 4], for feature maps of the given
  // (height, width) and strides (stride_y, stride_x).
  at::Tensor grid_anchors(const std::vector<std::pair<int64_t, int64_t>>& grid_sizes,
                          const std::vector<std::pair<int64_t, int64_t>>& strides,
                          at::ScalarType dtype = at::kFloat, at::Device device = at::kCPU) const;

  // torchvision's forward(): the strides are image_size / grid_size (integer division) where
  // image_size is the padded batch size (height, width). The anchors are the same for every image.
  // They are made once per (grids, strides, dtype, device) and kept (the 64 most recently used
  // sets; a miss sends nothing from the host): the returned tensor is shared, never to be written
  // to.
  at::Tensor operator()(std::pair<int64_t, int64_t> image_size,
                        const std::vector<std::pair<int64_t, int64_t>>& grid_sizes,
                        at::ScalarType dtype = at::kFloat, at::Device device = at::kCPU) const;
  // The same, reading the grid sizes and device from the feature maps [N, C, H_l, W_l]; the anchors
  // are in ops::geometry_dtype of the features (float32 for half and bfloat16 features).
  at::Tensor operator()(std::pair<int64_t, int64_t> image_size,
                        const std::vector<at::Tensor>& feature_maps) const;

 private:
  struct Cache;
  std::vector<std::vector<double>> sizes_;
  std::vector<std::vector<double>> aspect_ratios_;
  std::shared_ptr<Cache> cache_;  // shared by copies: they make the same anchors
};

}  // namespace largedet::ops
