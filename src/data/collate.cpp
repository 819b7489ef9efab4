#include "largedet/core/error.h"
#include "largedet/data/batch.h"

namespace largedet::data {

namespace {
int64_t round_up(int64_t v, int64_t d) { return d > 1 ? (v + d - 1) / d * d : v; }
}  // namespace

Batch collate(std::vector<Sample> samples, const CollateOptions& options) {
  LARGEDET_CHECK(!samples.empty(), "collate: an empty batch");
  int64_t max_h = 0, max_w = 0;
  for (auto& s : samples) {
    LARGEDET_CHECK(s.image.pixels() > 0 && s.image.rgb.size() == s.image.pixels() * 3,
                   "collate: image ", s.image_id, " has no pixels");
    if (s.height <= 0 || s.width <= 0) {
      s.height = s.image.height;
      s.width = s.image.width;
    }
    max_h = std::max<int64_t>(max_h, s.height);
    max_w = std::max<int64_t>(max_w, s.width);
  }
  const int64_t H = round_up(max_h, options.size_divisibility);
  const int64_t W = round_up(max_w, options.size_divisibility);
  const int64_t B = static_cast<int64_t>(samples.size());
  Batch batch;
  // Every element is written below (pixels or padding zeros): no need to zero it first.
  batch.images = at::empty({B, 3, H, W}, at::TensorOptions().dtype(at::kFloat));
  float mean[3] = {0, 0, 0}, inv_std[3] = {1, 1, 1};
  if (options.normalize) {
    for (int c = 0; c < 3; ++c) {
      mean[c] = options.pixel_mean[c];
      inv_std[c] = 1.0f / options.pixel_std[c];
    }
  }
  float* out = batch.images.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    Sample& s = samples[b];
    resize_normalize_into(s.image, s.width, s.height, s.flipped, mean, inv_std, out + b * 3 * H * W,
                          W, H * W);
    batch.image_sizes.push_back({s.height, s.width});
    batch.original_sizes.push_back({s.original_height, s.original_width});
    batch.scale_factors.push_back({static_cast<double>(s.height) / s.original_height,
                                   static_cast<double>(s.width) / s.original_width});
    batch.flipped.push_back(s.flipped);
    batch.image_ids.push_back(s.image_id);
    batch.targets.push_back(std::move(s.target));
    s.image.rgb = {};  // release the pixels early: batches are large
  }
  if (options.pin_memory && at::globalContext().hasCUDA()) {
    batch.images = batch.images.pin_memory();
  }
  return batch;
}

Batch Batch::to(const at::Device& device, bool non_blocking) const {
  Batch out = *this;
  out.images = images.to(device, non_blocking);
  for (auto& t : out.targets) {
    t.boxes = t.boxes.to(device, non_blocking);
    t.labels = t.labels.to(device, non_blocking);
    t.is_group_of = t.is_group_of.to(device, non_blocking);
    if (t.masks.defined()) t.masks = t.masks.to(device, non_blocking);
  }
  return out;
}

}  // namespace largedet::data
