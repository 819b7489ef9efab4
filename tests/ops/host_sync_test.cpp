// The host-sync counter: ATen's syncing ops seen through record-function callbacks (nested ones
// once), our own reads through read_to_host and note_host_sync, top-level ops counted, one
// profiler at a time; copies between host and device counted when they wait, uploads counted
// on every device.
#include <gtest/gtest.h>

#include "largedet/core/error.h"
#include "largedet/ops/host_sync.h"
#include "largedet/ops/nms.h"

namespace largedet::ops {
namespace {

TEST(HostSync, CountsSyncingOpsOnceAndOurReads) {
  auto x = at::arange(10, at::kFloat);
  HostSyncProfiler profiler;
  (void)(x > 3).sum().item<int64_t>();  // one _local_scalar_dense
  (void)at::nonzero(x > 5);             // one nonzero
  (void)x.masked_select(x > 2);         // one masked_select (whatever it runs inside)
  (void)read_to_host(x, "test read");
  note_host_sync("test size");
  (void)(x * 2 + 1);  // no sync
  const auto c = profiler.counts();
  EXPECT_EQ(c.syncs, 5) << c.syncs;
  EXPECT_EQ(c.syncs_by_name.at("aten::_local_scalar_dense"), 1);
  EXPECT_EQ(c.syncs_by_name.at("aten::nonzero"), 1);
  EXPECT_EQ(c.syncs_by_name.at("aten::masked_select"), 1);
  EXPECT_EQ(c.syncs_by_name.at("largedet::test read"), 1);
  EXPECT_EQ(c.syncs_by_name.at("largedet::test size"), 1);
  // Top-level ops only: gt, sum, item, gt, nonzero, gt, masked_select, to, mul, add (and
  // whatever `to` dispatches on a CPU tensor, which is nothing).
  EXPECT_GE(c.ops, 9);
  EXPECT_LE(c.ops, 12);
  profiler.reset();
  EXPECT_EQ(profiler.counts().syncs, 0);
  EXPECT_EQ(profiler.counts().ops, 0);
}

TEST(HostSync, NmsOutputSizeIsOneSyncAndNothingIsCountedOutsideAProfiler) {
  auto boxes = at::tensor({0.f, 0.f, 10.f, 10.f, 1.f, 1.f, 11.f, 11.f}).view({2, 4});
  auto scores = at::tensor({0.9f, 0.8f});
  (void)nms(boxes, scores, 0.5);  // not counted: no profiler
  HostSyncProfiler profiler;
  EXPECT_EQ(nms(boxes, scores, 0.5).numel(), 1);
  EXPECT_EQ(profiler.counts().syncs_by_name.at("largedet::nms"), 1);
  EXPECT_EQ(profiler.counts().syncs, 1);
  EXPECT_THROW(HostSyncProfiler second, Error);
}

TEST(HostSync, CopiesWaitUnlessNonBlockingAndHostToDeviceFromPinnedMemory) {
  const at::Device cpu(at::kCPU), gpu(at::kCUDA, 0);
  // host to device: only the pinned, non-blocking copy is free
  EXPECT_TRUE(copy_waits_for_device(cpu, false, gpu, false));
  EXPECT_TRUE(copy_waits_for_device(cpu, false, gpu, true));  // pageable: staged, synchronised
  EXPECT_TRUE(copy_waits_for_device(cpu, true, gpu, false));
  EXPECT_FALSE(copy_waits_for_device(cpu, true, gpu, true));
  // device to host: blocking waits, non-blocking does not
  EXPECT_TRUE(copy_waits_for_device(gpu, false, cpu, false));
  EXPECT_FALSE(copy_waits_for_device(gpu, false, cpu, true));
  // never between two hosts or two devices
  EXPECT_FALSE(copy_waits_for_device(cpu, false, cpu, false));
  EXPECT_FALSE(copy_waits_for_device(gpu, false, at::Device(at::kCUDA, 1), false));
}

TEST(HostSync, ACopyToAnotherDeviceIsSeenByTheCallbacks) {
  // The meta device stands in for a GPU: the same copy ops are dispatched, nothing runs.
  auto x = at::arange(4, at::kFloat);
  HostSyncProfiler profiler;
  (void)x.to(at::kMeta);                                     // blocking, pageable
  (void)x.to(at::kMeta, at::kFloat, /*non_blocking=*/true);  // pageable
  at::empty({4}, at::TensorOptions().device(at::kMeta)).copy_(x);
  (void)x.to(at::kDouble);  // on the host: free
  const auto c = profiler.counts();
  EXPECT_EQ(c.syncs, 3) << c.syncs;  // each copy once, not again for the copy_ inside _to_copy
  EXPECT_EQ(c.syncs_by_name.at("aten copy between host and device"), 3);
  EXPECT_EQ(c.uploads, 0);
}

TEST(HostSync, UploadsAreCountedOnTheCpuAsWhatAGpuStepWouldSend) {
  auto sizes = at::tensor({4, 5}, at::kLong);
  HostSyncProfiler profiler;
  const auto on_device = upload(sizes, at::Device(at::kCPU), "test sizes");
  EXPECT_TRUE(on_device.is_same(sizes));  // nothing to copy on the CPU
  (void)upload(sizes, at::Device(at::kCPU), "test sizes");
  const auto c = profiler.counts();
  EXPECT_EQ(c.uploads, 2);
  EXPECT_EQ(c.uploads_by_name.at("test sizes"), 2);
  EXPECT_EQ(c.syncs, 0);
  EXPECT_THROW((void)upload(at::empty({1}, at::TensorOptions().device(at::kMeta)),
                            at::Device(at::kCPU), "not on the host"),
               Error);
}

}  // namespace
}  // namespace largedet::ops
