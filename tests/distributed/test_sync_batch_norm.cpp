// SyncBatchNorm2d equals BatchNorm2d on the concatenated global batch, at world sizes 1, 2, 3 and
// (label scale) 32, with uneven local batches and empty ones.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>

#include "common/on_device.h"
#include "harness.h"
#include "largedet/core/error.h"
#include "largedet/distributed/collectives.h"
#include "largedet/distributed/sync_batch_norm.h"

namespace dist = largedet::distributed;

namespace {

constexpr int64_t kChannels = 5;

// |a - b| <= 1e-5 * |b| + 1e-5 * max|b| (the second term: elements that are ~0 in the reference).
::testing::AssertionResult close(const torch::Tensor& a, const torch::Tensor& b,
                                 const std::string& what) {
  if (a.sizes() != b.sizes())
    return ::testing::AssertionFailure() << what << ": shape " << a.sizes() << " vs " << b.sizes();
  if (b.numel() == 0) return ::testing::AssertionSuccess();
  double scale = b.abs().max().item<double>();
  auto error = (a - b).abs() - 1e-5 * b.abs();
  double worst = error.max().item<double>();
  if (worst <= 1e-5 * std::max(scale, 1e-12)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": off by " << worst << " beyond 1e-5 relative";
}

// Local batch sizes per world size: uneven, and one rank empty where there are several.
std::vector<int64_t> batch_sizes(int world, int variant) {
  if (world == 1) return {4};
  if (world == 2) return variant == 0 ? std::vector<int64_t>{3, 0} : std::vector<int64_t>{1, 4};
  if (world == 3)
    return variant == 0 ? std::vector<int64_t>{2, 0, 3} : std::vector<int64_t>{1, 2, 4};
  // Larger worlds (the scale test's 32): 0-2 images per rank, every third rank empty; or 1-4.
  std::vector<int64_t> sizes(static_cast<size_t>(world));
  for (int r = 0; r < world; ++r) sizes[size_t(r)] = variant == 0 ? r % 3 : 1 + r % 4;
  return sizes;
}

// Every rank builds the same global batch and upstream gradient, runs BatchNorm2d on all of it
// and SyncBatchNorm2d on its own slice, for two training steps and one eval step.
void check_against_batch_norm(int variant) {
  auto group = dist::default_group();
  const int world = group ? group->size() : 1;
  const int rank = group ? group->rank() : 0;
  auto sizes = batch_sizes(world, variant);
  int64_t begin = 0;
  for (int r = 0; r < rank; ++r) begin += sizes[r];
  const int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});

  torch::manual_seed(7 + variant);
  torch::nn::BatchNorm2d reference(kChannels);
  dist::SyncBatchNorm2d sync(kChannels);
  {
    torch::NoGradGuard no_grad;
    auto w = torch::rand({kChannels}) + 0.5, b = torch::randn({kChannels});
    reference->weight.copy_(w);
    sync->weight.copy_(w);
    reference->bias.copy_(b);
    sync->bias.copy_(b);
  }
  for (int step = 0; step < 2; ++step) {
    auto x = (torch::randn({total, kChannels, 3, 2}) * 2 + 1).set_requires_grad(true);
    auto g = torch::randn({total, kChannels, 3, 2});
    auto x_local = x.detach().narrow(0, begin, sizes[rank]).clone().set_requires_grad(true);
    auto y_ref = reference(x);
    auto y = sync(x_local);
    (y_ref * g).sum().backward();
    (y * g.narrow(0, begin, sizes[rank])).sum().backward();
    std::string at = " (step " + std::to_string(step) + ", rank " + std::to_string(rank) + ")";
    EXPECT_TRUE(close(y, y_ref.detach().narrow(0, begin, sizes[rank]), "output" + at));
    EXPECT_TRUE(close(x_local.grad(), x.grad().narrow(0, begin, sizes[rank]), "input grad" + at));
    // The global loss sums over ranks, so do weight and bias gradients.
    auto grad_w = sync->weight.grad().clone(), grad_b = sync->bias.grad().clone();
    dist::all_reduce_sum(grad_w);
    dist::all_reduce_sum(grad_b);
    EXPECT_TRUE(close(grad_w, reference->weight.grad(), "weight grad" + at));
    EXPECT_TRUE(close(grad_b, reference->bias.grad(), "bias grad" + at));
    EXPECT_TRUE(close(sync->running_mean, reference->running_mean, "running mean" + at));
    EXPECT_TRUE(close(sync->running_var, reference->running_var, "running var" + at));
    sync->zero_grad();
    reference->zero_grad();
  }
  EXPECT_EQ(sync->num_batches_tracked.item<int64_t>(), 2);
  sync->eval();
  reference->eval();
  auto x = torch::randn({3, kChannels, 2, 2});
  EXPECT_TRUE(close(sync(x), reference(x), "eval output"));
}

}  // namespace

// One process, no launcher, no group: plain BatchNorm2d behaviour.
TEST(SyncBatchNorm, WorldOfOneEqualsBatchNorm2d) { check_against_batch_norm(0); }

TEST(SyncBatchNorm, WithoutAffineOrRunningStats) {
  torch::manual_seed(3);
  torch::nn::BatchNorm2d reference(
      torch::nn::BatchNorm2dOptions(kChannels).affine(false).track_running_stats(false));
  dist::SyncBatchNorm2d sync(
      dist::SyncBatchNorm2dOptions(kChannels).affine(false).track_running_stats(false));
  auto x = torch::randn({4, kChannels, 3, 3}, torch::requires_grad());
  auto x2 = x.detach().clone().set_requires_grad(true);
  // Not sum(y^2): its input gradient is zero up to rounding (BN output has a fixed norm).
  auto g = torch::randn(x.sizes());
  (reference(x) * g).sum().backward();
  (sync(x2) * g).sum().backward();
  EXPECT_TRUE(close(x2.grad(), x.grad(), "input grad"));
  sync->eval();  // no running stats: still batch statistics
  reference->eval();
  EXPECT_TRUE(close(sync(x.detach()), reference(x.detach()), "eval output"));
  EXPECT_EQ(sync->named_parameters().size(), 0u);
}

// Values of |x| > 256 square to inf in half: the statistics must be taken in float or wider,
// and the result must be BatchNorm2d's on the same values in float, returned in the input dtype.
TEST(SyncBatchNorm, HalfAndBf16InputsAccumulateInFloat) {
  for (auto dtype : {torch::kHalf, torch::kBFloat16}) {
    torch::manual_seed(11);
    auto values = (torch::randn({4, kChannels, 5, 5}) * 300 + 700).to(dtype);  // up to ~2000
    torch::nn::BatchNorm2d reference(kChannels);
    dist::SyncBatchNorm2d sync(kChannels);
    auto x_ref = values.to(torch::kFloat).set_requires_grad(true);
    auto x = values.clone().set_requires_grad(true);
    auto g = torch::randn(values.sizes());
    auto y_ref = reference(x_ref);
    auto y = sync(x);
    ASSERT_EQ(y.scalar_type(), dtype);
    ASSERT_TRUE(torch::isfinite(y).all().item<bool>()) << dtype;
    const double tolerance = dtype == torch::kHalf ? 4e-3 : 3e-2;  // the output's rounding
    EXPECT_LT((y.to(torch::kFloat) - y_ref).abs().max().item<double>(), tolerance) << dtype;
    EXPECT_TRUE(torch::allclose(sync->running_mean, reference->running_mean, 1e-5)) << dtype;
    EXPECT_TRUE(torch::allclose(sync->running_var, reference->running_var, 1e-4)) << dtype;
    (y_ref * g).sum().backward();
    (y.to(torch::kFloat) * g).sum().backward();
    ASSERT_EQ(x.grad().scalar_type(), dtype);
    ASSERT_TRUE(torch::isfinite(x.grad()).all().item<bool>()) << dtype;
    const double scale = x_ref.grad().abs().max().item<double>();
    EXPECT_LT((x.grad().to(torch::kFloat) - x_ref.grad()).abs().max().item<double>(),
              8 * tolerance * scale)
        << dtype;
  }
}

// On each device (tests/common/on_device.h; CUDA runs ATen's native SyncBN kernels), in a world of
// one: BatchNorm2d's results in float, float statistics for half inputs. The reference runs on the
// values the norm sees: the input rounded to the norm's dtype, then widened to float.
using SyncBatchNormOnDevice = largedet::test::OnDevice;

TEST_P(SyncBatchNormOnDevice, MatchesBatchNorm2dInFloat) {
  const auto dev = device();
  for (auto dtype : {torch::kFloat, torch::kHalf}) {
    SCOPED_TRACE(::testing::Message() << dtype);
    torch::manual_seed(13);
    auto values = (torch::randn({4, kChannels, 5, 5}) * 300 + 700).to(dtype).to(dev);
    torch::nn::BatchNorm2d reference(kChannels);
    dist::SyncBatchNorm2d sync(kChannels);
    reference->to(dev);
    sync->to(dev);
    auto x_ref = values.to(torch::kFloat).clone().set_requires_grad(true);
    auto x = values.clone().set_requires_grad(true);
    auto g = torch::randn(values.sizes()).to(dev);
    for (int step = 0; step < 2; ++step) {
      auto y_ref = reference(x_ref);
      auto y = sync(x);
      ASSERT_EQ(y.scalar_type(), dtype);
      const double tolerance = dtype == torch::kHalf ? 4e-3 : 1e-5;  // the output's rounding
      EXPECT_LT((y.to(torch::kFloat) - y_ref).abs().max().item<double>(), tolerance) << step;
      EXPECT_TRUE(torch::allclose(sync->running_mean, reference->running_mean, 1e-5)) << step;
      EXPECT_TRUE(torch::allclose(sync->running_var, reference->running_var, 1e-4)) << step;
      (y_ref * g).sum().backward();
      (y.to(torch::kFloat) * g).sum().backward();
      const double scale = x_ref.grad().abs().max().item<double>();
      EXPECT_LT((x.grad().to(torch::kFloat) - x_ref.grad()).abs().max().item<double>(),
                8 * tolerance * scale)
          << step;
      EXPECT_TRUE(torch::allclose(sync->weight.grad(), reference->weight.grad(), 1e-3, 1e-3));
      EXPECT_TRUE(torch::allclose(sync->bias.grad(), reference->bias.grad(), 1e-3, 1e-3));
      x.mutable_grad().reset();
      x_ref.mutable_grad().reset();
      sync->zero_grad();
      reference->zero_grad();
    }
  }
}

LARGEDET_ON_DEVICES(SyncBatchNormOnDevice);

TEST(SyncBatchNorm, StateDictNamesMatchBatchNorm2d) {
  torch::nn::BatchNorm2d reference(kChannels);
  dist::SyncBatchNorm2d sync(kChannels);
  EXPECT_EQ(sync->named_parameters().keys(), reference->named_parameters().keys());
  EXPECT_EQ(sync->named_buffers().keys(), reference->named_buffers().keys());
  auto any = dist::make_sync_batch_norm(kChannels);
  EXPECT_EQ(any.forward(torch::randn({2, kChannels, 2, 2})).sizes(),
            torch::IntArrayRef({2, kChannels, 2, 2}));
}

TEST(SyncBatchNorm, ClearErrors) {
  dist::SyncBatchNorm2d sync(kChannels);
  EXPECT_THROW(sync(torch::randn({2, kChannels})), largedet::Error);
  EXPECT_THROW(sync(torch::randn({2, kChannels + 1, 2, 2})), largedet::Error);
  EXPECT_THROW(sync(torch::randn({1, kChannels, 1, 1})), largedet::Error);  // one value
}

TEST(DistWorker, DISABLED_SyncBatchNorm) {
  auto group = largedet::test::init_worker();
  check_against_batch_norm(0);
  check_against_batch_norm(1);
}

TEST(SyncBatchNorm, LaunchedWorldOf1) {
  auto run = largedet::test::launch_workers(1, "SyncBatchNorm");
  EXPECT_EQ(run.code, 0) << run.output;
}

TEST(SyncBatchNorm, LaunchedWorldOf2) {
  auto run = largedet::test::launch_workers(2, "SyncBatchNorm");
  EXPECT_EQ(run.code, 0) << run.output;
}

TEST(SyncBatchNorm, LaunchedWorldOf3) {
  auto run = largedet::test::launch_workers(3, "SyncBatchNorm");
  EXPECT_EQ(run.code, 0) << run.output;
}

// Label scale (`make test-scale`): 32 ranks on one machine, 48 images, a third of the ranks empty.
TEST(ScaleSyncBatchNorm, LaunchedWorldOf32EqualsBatchNormOverTheConcatenatedBatch) {
  auto run = largedet::test::launch_workers(32, "SyncBatchNorm");
  EXPECT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("32 ranks connected in"), std::string::npos) << run.output;
}
