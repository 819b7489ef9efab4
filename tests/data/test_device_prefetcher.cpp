// DevicePrefetcher: batches in order on the device, one read ahead on CUDA only, errors in their
// place.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <stdexcept>

#include "common/on_device.h"
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

using DevicePrefetcherOnDevice = test::OnDevice;

// On CUDA the next batch is already on its way when one is returned; on the CPU batches pass
// through without reading ahead.
TEST_P(DevicePrefetcherOnDevice, BatchesArriveInOrderAndErrorsKeepTheirPlace) {
  const auto dev = device();
  Source source;
  DevicePrefetcher prefetcher([&] { return source(); }, dev);
  ASSERT_TRUE(prefetcher.next().has_value());
  EXPECT_EQ(source.calls, on_cuda() ? 2 : 1);
  Source fresh;
  DevicePrefetcher again([&] { return fresh(); }, dev);
  expect_sequence(again, dev);
}

LARGEDET_ON_DEVICES(DevicePrefetcherOnDevice);

}  // namespace
}  // namespace largedet::data
