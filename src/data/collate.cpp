#include "largedet/core/error.h"
#include "largedet/data/batch.h"

namespace largedet::data {

namespace {
int64_t round_up(int64_t v, int64_t d) { return d > 1 ? (v + d - 1) / d * d : v; }
}  // namespace

Batch collate(std::vector<Sample> samples, const CollateOptions& options) {
  LARGEDET_CHECK(!samples.empty(), "collate: an empty batch");
  int64_t max_h = 0, max_w = 0;
  for (const auto& s : samples) {
    LARGEDET_CHECK(s.image.pixels() > 0 && s.image.rgb.size() == s.image.pixels() * 3,
                   "collate: image ", s.image_id, " has no pixels");
    max_h = std::max<int64_t>(max_h, s.image.height);
    max_w = std::max<int64_t>(max_w, s.image.width);
  }
  const int64_t H = round_up(max_h, options.size_divisibility);
  const int64_t W = round_up(max_w, options.size_divisibility);
  const int64_t B = static_cast<int64_t>(samples.size());
  at::TensorOptions opts = at::TensorOptions().dtype(at::kFloat);
  Batch batch;
  batch.images = at::zeros({B, 3, H, W}, opts);
  std::array<float, 3> mean{0, 0, 0}, inv_std{1, 1, 1};
  if (options.normalize) {
    for (int c = 0; c < 3; ++c) {
      mean[c] = options.pixel_mean[c];
      inv_std[c] = 1.0f / options.pixel_std[c];
    }
  }
  float* out = batch.images.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    Sample& s = samples[b];
    const int h = s.image.height, w = s.image.width;
    const uint8_t* src = s.image.rgb.data();
    // HWC uint8 -> CHW float, normalised, in one pass per channel plane.
    for (int c = 0; c < 3; ++c) {
      float* plane = out + (b * 3 + c) * H * W;
      const float m = mean[c], k = inv_std[c];
      for (int y = 0; y < h; ++y) {
        const uint8_t* row = src + static_cast<size_t>(y) * w * 3 + c;
        float* dst = plane + y * W;
        for (int x = 0; x < w; ++x) dst[x] = (row[3 * x] - m) * k;
      }
    }
    batch.image_sizes.push_back({h, w});
    batch.original_sizes.push_back({s.original_height, s.original_width});
    batch.scale_factors.push_back(
        {static_cast<double>(h) / s.original_height, static_cast<double>(w) / s.original_width});
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
