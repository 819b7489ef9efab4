// Host waits on collectives: which backends block the host in wait() (Gloo always, NCCL only with
// c10d's blocking wait), the counter, and the count of a SyncBN step under two Gloo ranks (two per
// norm layer, one per gradient bucket).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "harness.h"
#include "largedet/core/error.h"
#include "largedet/distributed/gradient_sync.h"
#include "largedet/distributed/host_waits.h"
#include "largedet/distributed/sync_batch_norm.h"

namespace dist = largedet::distributed;

namespace {

bool blocks(const std::string& backend, const dist::Environment& env) {
  return dist::waits_block_host(backend, dist::nccl_fault_env(env));
}

TEST(HostWaits, GlooAlwaysBlocksNcclOnlyWithItsBlockingWait) {
  EXPECT_TRUE(blocks("gloo", {}));
  EXPECT_TRUE(blocks("gloo", {{"TORCH_NCCL_BLOCKING_WAIT", "0"}}));
  EXPECT_FALSE(blocks("nccl", {}));  // our default: 0
  EXPECT_FALSE(blocks("nccl", {{"TORCH_NCCL_BLOCKING_WAIT", "0"}}));
  EXPECT_FALSE(blocks("nccl", {{"TORCH_NCCL_BLOCKING_WAIT", "No"}}));
  EXPECT_FALSE(blocks("nccl", {{"TORCH_NCCL_BLOCKING_WAIT", "2"}}));  // c10d: invalid, default off
  for (const char* on : {"1", "y", "Yes", "t", "TRUE"}) {
    EXPECT_TRUE(blocks("nccl", {{"TORCH_NCCL_BLOCKING_WAIT", on}})) << on;
    EXPECT_TRUE(blocks("nccl", {{"NCCL_BLOCKING_WAIT", on}})) << on;
  }
  // c10d reads the new name first.
  EXPECT_FALSE(blocks("nccl", {{"TORCH_NCCL_BLOCKING_WAIT", "0"}, {"NCCL_BLOCKING_WAIT", "1"}}));
}

TEST(HostWaits, CountedOnlyUnderACounterOneAtATime) {
  dist::note_host_wait("allreduce");  // nobody counting: dropped
  {
    dist::HostWaitCounter counter;
    dist::note_host_wait("allreduce");
    dist::note_host_wait("allgather");
    dist::note_host_wait("allreduce");
    EXPECT_THROW(dist::HostWaitCounter second, largedet::Error);
    const auto counts = counter.counts();
    EXPECT_EQ(counts.waits, 3);
    EXPECT_EQ(counts.by_op.at("allreduce"), 2);
    EXPECT_EQ(counts.by_op.at("allgather"), 1);
  }
  dist::HostWaitCounter fresh;
  EXPECT_EQ(fresh.counts().waits, 0);
}

// Three conv + SyncBN layers and a linear head: one step's forward, backward and gradient sync.
TEST(DistWorker, DISABLED_HostWaitsPerStep) {
  auto group = largedet::test::init_worker();
  torch::manual_seed(0);
  torch::nn::Sequential net;
  for (int i = 0; i < 3; ++i) {
    net->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(i == 0 ? 3 : 4, 4, 3).padding(1)));
    net->push_back(dist::SyncBatchNorm2d(dist::SyncBatchNorm2dOptions(4)));
  }
  net->push_back(torch::nn::Flatten());
  net->push_back(torch::nn::Linear(4 * 6 * 6, 2));
  // Small buckets: several allreduces, each waited for once in finish().
  dist::GradientSync sync(*net, nullptr, dist::GradientSyncOptions().bucket_size_bytes(256));
  const auto buckets = static_cast<int64_t>(sync.bucket_parameters().size());
  ASSERT_GT(buckets, 1);
  dist::HostWaitCounter counter;
  net->forward(torch::randn({2, 3, 6, 6})).sum().backward();
  sync.finish();
  // Per layer the forward's statistics (an allreduce on the CPU, CUDA's allgather) and the
  // backward's sums (an allreduce); then each bucket's allreduce.
  const auto counts = counter.counts();
  EXPECT_EQ(counts.waits, 2 * 3 + buckets);
  EXPECT_EQ(counts.by_op.at("allreduce"), 2 * 3 + buckets);
}

TEST(HostWaits, LaunchedGlooStepWaitsTwicePerSyncBnLayerAndOncePerBucket) {
  auto run = largedet::test::launch_workers(2, "HostWaitsPerStep");
  EXPECT_EQ(run.code, 0) << run.output;
}

}  // namespace
