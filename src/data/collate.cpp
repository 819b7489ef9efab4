#include "largedet/core/error.h"
#include "largedet/data/batch.h"

namespace largedet::data {

namespace {

// Interleaved HWC pixels into the three planes of a padded [3, H, W] slot; the padding is zeroed
// here rather than by a fill of the whole batch first.
void copy_into_planes(const Image& image, uint8_t* planes, int64_t W, int64_t H) {
  const int64_t h = image.height, w = image.width;
  for (int c = 0; c < 3; ++c) {
    uint8_t* plane = planes + c * H * W;
    for (int64_t y = 0; y < h; ++y) {
      const uint8_t* src = image.rgb.data() + y * w * 3 + c;
      uint8_t* row = plane + y * W;
      for (int64_t x = 0; x < w; ++x) row[x] = src[3 * x];
      std::fill(row + w, row + W, uint8_t{0});
    }
    std::fill(plane + h * W, plane + H * W, uint8_t{0});
  }
}

at::Tensor pinned(const at::Tensor& t) { return t.is_pinned() ? t : t.pin_memory(); }

}  // namespace

Batch collate(std::vector<Sample> samples, const CollateOptions& options) {
  LARGEDET_CHECK(!samples.empty(), "collate: an empty batch");
  int64_t H = 0, W = 0;
  for (auto& s : samples) {
    LARGEDET_CHECK(s.image.pixels() > 0 && s.image.rgb.size() == s.image.pixels() * 3,
                   "collate: image ", s.image_id, " has no pixels");
    if (s.height <= 0 || s.width <= 0) {
      s.height = s.image.height;
      s.width = s.image.width;
    }
    H = std::max<int64_t>(H, s.image.height);
    W = std::max<int64_t>(W, s.image.width);
  }
  const int64_t B = static_cast<int64_t>(samples.size());
  const bool pin = options.pin_memory && at::globalContext().hasCUDA();
  Batch batch;
  batch.images = at::empty({B, 3, H, W}, at::TensorOptions().dtype(at::kByte).pinned_memory(pin));
  uint8_t* out = batch.images.data_ptr<uint8_t>();
  for (int64_t b = 0; b < B; ++b) {
    Sample& s = samples[b];
    copy_into_planes(s.image, out + b * 3 * H * W, W, H);
    batch.decoded_sizes.push_back({s.image.height, s.image.width});
    batch.image_sizes.push_back({s.height, s.width});
    batch.original_sizes.push_back({s.original_height, s.original_width});
    batch.scale_factors.push_back({static_cast<double>(s.height) / s.original_height,
                                   static_cast<double>(s.width) / s.original_width});
    batch.flipped.push_back(s.flipped);
    batch.image_ids.push_back(s.image_id);
    batch.targets.push_back(std::move(s.target));
    s.image.rgb = {};  // release the pixels early: batches are large
  }
  if (pin) {
    for (auto& t : batch.targets) t.for_each_tensor([](at::Tensor& x) { x = pinned(x); });
  }
  return batch;
}

Batch Batch::to(const at::Device& device, bool non_blocking) const {
  Batch out = *this;
  out.images = images.to(device, non_blocking);
  for (auto& t : out.targets)
    t.for_each_tensor([&](at::Tensor& x) { x = x.to(device, non_blocking); });
  return out;
}

}  // namespace largedet::data
