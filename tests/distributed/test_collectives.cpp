// Mean allreduce, broadcast and variable-size all-gather, locally and over 3 launched ranks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "harness.h"
#include "largedet/distributed/collectives.h"

namespace dist = largedet::distributed;

TEST(Collectives, WorldOfOneIsIdentity) {
  auto t = torch::arange(4, torch::kFloat);
  dist::all_reduce_mean(t);
  dist::all_reduce_sum(t);
  dist::broadcast(t, 0);
  dist::barrier();
  EXPECT_TRUE(t.equal(torch::arange(4, torch::kFloat)));
  auto blobs = dist::all_gather_bytes(std::string("a\0b", 3));
  ASSERT_EQ(blobs.size(), 1u);
  EXPECT_EQ(blobs[0], std::string("a\0b", 3));
  EXPECT_EQ(dist::gather_bytes("x", 0).size(), 1u);
}

TEST(DistWorker, DISABLED_Collectives) {
  auto group = largedet::test::init_worker();
  const int rank = group->rank(), n = group->size();
  ASSERT_EQ(n, 3);

  auto t = torch::full({5}, static_cast<double>(rank + 1));
  dist::all_reduce_sum(t);
  EXPECT_TRUE(t.equal(torch::full({5}, 6.0)));
  t.fill_(rank + 1);
  dist::all_reduce_mean(t);
  EXPECT_TRUE(t.equal(torch::full({5}, 2.0)));

  // Non-contiguous and integer tensors are staged and written back in place.
  auto m = torch::full({3, 4}, static_cast<int64_t>(rank), torch::kLong).t();
  dist::all_reduce_sum(m);
  EXPECT_TRUE(m.equal(torch::full({4, 3}, int64_t{3}, torch::kLong)));

  auto b = torch::full({2, 2}, static_cast<float>(rank * 10));
  dist::broadcast(b, 2);
  EXPECT_TRUE(b.equal(torch::full({2, 2}, 20.0f)));

  auto mx = torch::full({1}, static_cast<float>(rank));
  group->allreduce(mx, dist::ReduceOp::kMax);
  EXPECT_EQ(mx.item<float>(), 2.0f);

  // Rank 0 sends nothing, rank 1 five bytes, rank 2 ten with a zero byte inside.
  std::string mine(rank * 5, static_cast<char>('a' + rank));
  if (rank == 2) mine[3] = '\0';
  auto blobs = dist::all_gather_bytes(mine);
  ASSERT_EQ(blobs.size(), 3u);
  EXPECT_EQ(blobs[0], "");
  EXPECT_EQ(blobs[1], "bbbbb");
  EXPECT_EQ(blobs[2], std::string("ccc\0cccccc", 10));
  auto empty = dist::all_gather_bytes("");
  EXPECT_EQ(empty, std::vector<std::string>(3));
  // init() gave SyncBN a communicator of its own; groups work side by side.
  auto syncbn = dist::sync_batch_norm_group();
  ASSERT_NE(syncbn, group);
  auto a = torch::ones({1 << 16}), c = torch::ones({8});
  auto big = group->allreduce_async({a});
  syncbn->allreduce(c);
  big->wait();
  EXPECT_TRUE(c.equal(torch::full({8}, 3.0f)));
  EXPECT_TRUE(a.equal(torch::full({1 << 16}, 3.0f)));
  auto gathered = dist::gather_bytes(std::to_string(rank), 1);
  if (rank == 1)
    EXPECT_EQ(gathered, (std::vector<std::string>{"0", "1", "2"}));
  else
    EXPECT_TRUE(gathered.empty());
  dist::barrier();
}

TEST(Collectives, ThreeLaunchedRanks) {
  auto run = largedet::test::launch_workers(3, "Collectives");
  EXPECT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("[rank 2] [  PASSED  ] 1 test"), std::string::npos) << run.output;
}
