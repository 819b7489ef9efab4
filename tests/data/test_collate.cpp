// Collate: 8-bit planes at the decoded size, zero padding to the largest image, every size kept,
// targets moved.
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
  s.height = h * 3;  // the model resizes to this
  s.width = w * 3;
  s.original_width = w * 2;
  s.original_height = h * 2;
  s.target.boxes = at::tensor({1.f, 2.f, 3.f, 4.f}).view({1, 4});
  s.target.labels = at::tensor({int64_t{5}});
  return s;
}

TEST(Collate, PadsToTheLargestImageAndKeepsEverySize) {
  std::vector<Sample> s;
  s.push_back(sample(50, 40, 10, 1));
  s.push_back(sample(70, 33, 20, 2));
  s[1].flipped = true;
  const Batch b = collate(std::move(s));
  EXPECT_EQ(b.images.scalar_type(), at::kByte);
  EXPECT_EQ(b.images.sizes(), (at::IntArrayRef{2, 3, 40, 70}));
  EXPECT_EQ(b.image_bytes(), 2 * 3 * 40 * 70);
  EXPECT_EQ(b.decoded_sizes[1], (std::array<int64_t, 2>{33, 70}));
  EXPECT_EQ(b.image_sizes[0], (std::array<int64_t, 2>{120, 150}));
  EXPECT_EQ(b.image_sizes[1], (std::array<int64_t, 2>{99, 210}));
  EXPECT_EQ(b.original_sizes[1], (std::array<int64_t, 2>{66, 140}));
  EXPECT_DOUBLE_EQ(b.scale_factors[0][0], 1.5);
  EXPECT_EQ(b.flipped, (std::vector<bool>{false, true}));  // the model mirrors, not collate
  EXPECT_EQ(b.image_ids, (std::vector<int64_t>{1, 2}));
  // Inside: the pixels, unmirrored; outside: zero padding.
  EXPECT_EQ(b.images[0].slice(1, 0, 40).slice(2, 0, 50).min().item<int>(), 10);
  EXPECT_EQ(b.images[0].slice(2, 50).max().item<int>(), 0);
  EXPECT_EQ(b.images[1].slice(1, 0, 33).slice(2, 0, 70).min().item<int>(), 20);
  EXPECT_EQ(b.images[1].slice(1, 33).max().item<int>(), 0);
  EXPECT_EQ(b.targets[1].labels.item<int64_t>(), 5);
}

TEST(Collate, ChannelsAreRgbPlanesPixelForPixel) {
  Sample s = sample(5, 4, 0, 1);
  for (size_t i = 0; i < s.image.rgb.size(); ++i) s.image.rgb[i] = static_cast<uint8_t>(i);
  const std::vector<uint8_t> rgb = s.image.rgb;
  std::vector<Sample> v;
  v.push_back(std::move(s));
  const Batch b = collate(std::move(v));
  const at::Tensor hwc = at::from_blob(const_cast<uint8_t*>(rgb.data()), {4, 5, 3}, at::kByte);
  EXPECT_TRUE(at::equal(b.images[0], hwc.permute({2, 0, 1})));
}

TEST(Collate, AnUnsetSizeMeansTheImageIsNotResized) {
  std::vector<Sample> s;
  s.push_back(sample(5, 7, 1, 1));
  s[0].height = s[0].width = 0;
  const Batch b = collate(std::move(s));
  EXPECT_EQ(b.images.sizes(), (at::IntArrayRef{1, 3, 7, 5}));
  EXPECT_EQ(b.image_sizes[0], (std::array<int64_t, 2>{7, 5}));
}

}  // namespace
}  // namespace largedet::data
