// Collate: padding to SIZE_DIVISIBILITY with the true sizes kept, normalisation, targets moved.
#include <gtest/gtest.h>

#include "largedet/data/batch.h"

namespace largedet::data {
namespace {

Sample sample(int w, int h, uint8_t value, int64_t id) {
  Sample s;
  s.image.width = w;
  s.image.height = h;
  s.image.rgb.assign(static_cast<size_t>(w) * h * 3, value);
  s.image_id = id;
  s.original_width = w * 2;
  s.original_height = h * 2;
  s.target.boxes = at::tensor({1.f, 2.f, 3.f, 4.f}).view({1, 4});
  s.target.labels = at::tensor({int64_t{5}});
  return s;
}

TEST(Collate, PadsToAMultipleOf32AndKeepsTrueSizes) {
  std::vector<Sample> s;
  s.push_back(sample(50, 40, 10, 1));
  s.push_back(sample(70, 33, 20, 2));
  CollateOptions o;
  o.normalize = false;
  const Batch b = collate(std::move(s), o);
  EXPECT_EQ(b.images.sizes(), (at::IntArrayRef{2, 3, 64, 96}));
  EXPECT_EQ(b.image_sizes[0], (std::array<int64_t, 2>{40, 50}));
  EXPECT_EQ(b.image_sizes[1], (std::array<int64_t, 2>{33, 70}));
  EXPECT_EQ(b.original_sizes[1], (std::array<int64_t, 2>{66, 140}));
  EXPECT_DOUBLE_EQ(b.scale_factors[0][0], 0.5);
  EXPECT_EQ(b.image_ids, (std::vector<int64_t>{1, 2}));
  // Inside: the pixels; outside: zero padding.
  EXPECT_EQ(b.images[0].slice(1, 0, 40).slice(2, 0, 50).min().item<float>(), 10.f);
  EXPECT_EQ(b.images[0].slice(1, 40).abs().max().item<float>(), 0.f);
  EXPECT_EQ(b.images[0].slice(2, 50).abs().max().item<float>(), 0.f);
  EXPECT_EQ(b.images[1].slice(1, 0, 33).slice(2, 0, 70).max().item<float>(), 20.f);
  EXPECT_EQ(b.targets[1].labels.item<int64_t>(), 5);
}

TEST(Collate, NormalisesPerChannelAndChannelsAreRgbPlanes) {
  Sample s = sample(32, 32, 0, 1);
  for (size_t i = 0; i < s.image.rgb.size(); i += 3) {
    s.image.rgb[i] = 100;
    s.image.rgb[i + 1] = 150;
    s.image.rgb[i + 2] = 200;
  }
  std::vector<Sample> v;
  v.push_back(std::move(s));
  CollateOptions o;
  o.pixel_mean = {100, 100, 100};
  o.pixel_std = {1, 2, 4};
  const Batch b = collate(std::move(v), o);
  EXPECT_EQ(b.images.sizes(), (at::IntArrayRef{1, 3, 32, 32}));
  EXPECT_FLOAT_EQ(b.images[0][0][5][7].item<float>(), 0.f);
  EXPECT_FLOAT_EQ(b.images[0][1][5][7].item<float>(), 25.f);
  EXPECT_FLOAT_EQ(b.images[0][2][5][7].item<float>(), 25.f);
}

TEST(Collate, NoDivisibilityMeansTightPadding) {
  std::vector<Sample> s;
  s.push_back(sample(5, 7, 1, 1));
  CollateOptions o;
  o.size_divisibility = 0;
  EXPECT_EQ(collate(std::move(s), o).images.sizes(), (at::IntArrayRef{1, 3, 7, 5}));
}

}  // namespace
}  // namespace largedet::data
