// DevicePrefetcher: batches in order on the device, one read ahead on CUDA only, errors in their
// place.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <stdexcept>

#include "largedet/data/device_prefetcher.h"

namespace largedet::data {
namespace {

Batch numbered_batch(int k) {
  Batch b;
  b.images = at::full({1, 3, 4, 5}, k, at::kByte);
  b.decoded_sizes = b.image_sizes = b.original_sizes = {{4, 5}};
  b.flipped = {false};
  b.image_ids = {k};
  Target t;
  t.boxes = at::full({1, 4}, static_cast<float>(k));
  t.labels = at::full({1}, k, at::kLong);
  t.is_group_of = at::zeros({1}, at::kBool);
  b.targets.push_back(t);
  return b;
}

// Batches 0, 1, 2, then an error, then the end; counts the calls.
struct Source {
  int calls = 0;
  std::optional<Batch> operator()() {
    const int k = calls++;
    if (k == 3) throw std::runtime_error("batch 3 is broken");
    if (k > 3) return std::nullopt;
    return numbered_batch(k);
  }
};

void expect_sequence(DevicePrefetcher& prefetcher, const c10::Device& device) {
  for (int k = 0; k < 3; ++k) {
    auto b = prefetcher.next();
    ASSERT_TRUE(b.has_value()) << k;
    EXPECT_EQ(b->images.device(), device);
    EXPECT_EQ(b->targets[0].boxes.device(), device);
    EXPECT_EQ(b->images.to(at::kInt).sum().item<int>(), k * 60) << k;
    EXPECT_EQ(b->targets[0].labels.item<int64_t>(), k);
    EXPECT_EQ(b->image_ids, (std::vector<int64_t>{k}));
  }
  EXPECT_THROW(prefetcher.next(), std::runtime_error);
  EXPECT_FALSE(prefetcher.next().has_value());
}

TEST(DevicePrefetcher, OnTheCpuBatchesPassThroughWithoutReadingAhead) {
  Source source;
  DevicePrefetcher prefetcher([&] { return source(); }, c10::Device(c10::kCPU));
  ASSERT_TRUE(prefetcher.next().has_value());
  EXPECT_EQ(source.calls, 1);
  Source fresh;
  DevicePrefetcher again([&] { return fresh(); }, c10::Device(c10::kCPU));
  expect_sequence(again, c10::Device(c10::kCPU));
}

TEST(CudaDevicePrefetcher, BatchesArriveOnTheDeviceInOrderAndErrorsKeepTheirPlace) {
  if (!at::globalContext().hasCUDA()) GTEST_SKIP() << "no CUDA device";
  const c10::Device cuda(c10::kCUDA, 0);
  Source source;
  DevicePrefetcher prefetcher([&] { return source(); }, cuda);
  ASSERT_TRUE(prefetcher.next().has_value());
  EXPECT_EQ(source.calls, 2);  // batch 1 is already on its way
  Source fresh;
  DevicePrefetcher again([&] { return fresh(); }, cuda);
  expect_sequence(again, cuda);
}

}  // namespace
}  // namespace largedet::data
