// The host-sync counter: ATen's syncing ops seen through record-function callbacks (nested ones
// once), our own reads through read_to_host and note_host_sync, top-level ops counted, one
// profiler at a time.
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

}  // namespace
}  // namespace largedet::ops
