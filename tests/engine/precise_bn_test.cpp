// update_bn_stats against statistics computed directly from the batches each layer saw.
#include "largedet/engine/precise_bn.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <vector>

#include "largedet/core/error.h"
#include "largedet/distributed/sync_batch_norm.h"

namespace {

// conv -> BatchNorm2d -> conv -> SyncBatchNorm2d (a world of one), with the layers kept at hand
// to compute what each BN sees.
struct TwoNorms : torch::nn::Module {
  TwoNorms() {
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 3, 3)));
    bn1 = register_module("bn1", torch::nn::BatchNorm2d(3));
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 1)));
    bn2 = register_module("bn2", largedet::distributed::SyncBatchNorm2d(4));
  }
  torch::Tensor forward(const torch::Tensor& x) { return bn2(conv2(bn1(conv1(x)).relu())); }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr};
  largedet::distributed::SyncBatchNorm2d bn2{nullptr};
};

// Per-channel mean and unbiased variance of [N, C, H, W], in double.
std::pair<torch::Tensor, torch::Tensor> stats(const torch::Tensor& x) {
  auto d = x.to(torch::kDouble).transpose(0, 1).reshape({x.size(1), -1});
  return {d.mean(1), d.var(1, /*unbiased=*/true)};
}

TEST(PreciseBN, RunningStatisticsBecomeTheAverageOfTheBatchesSeen) {
  torch::manual_seed(5);
  TwoNorms model;
  model.train();
  std::vector<torch::Tensor> batches;
  for (int i = 0; i < 3; ++i) batches.push_back(torch::randn({2 + i, 2, 6, 5}) * (1 + i) + i);
  // Some history, which precise BN must replace rather than blend with.
  model.forward(torch::randn({4, 2, 6, 5}) * 10);
  const auto tracked1 = model.bn1->num_batches_tracked.clone();
  const auto tracked2 = model.bn2->num_batches_tracked.clone();

  // The expected statistics, with the weights fixed (they do not change in between).
  torch::Tensor mean1 = torch::zeros({3}, torch::kDouble), var1 = torch::zeros({3}, torch::kDouble);
  torch::Tensor mean2 = torch::zeros({4}, torch::kDouble), var2 = torch::zeros({4}, torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    for (const auto& x : batches) {
      auto a = model.conv1(x);
      auto [m1, v1] = stats(a);
      mean1 += m1 / 3;
      var1 += v1 / 3;
      // The second BN's input: the first normalised with this batch's own (biased) statistics.
      auto mu = a.mean({0, 2, 3}, true), sigma2 = a.var({0, 2, 3}, false, true);
      auto b = model.conv2(((a - mu) / (sigma2 + 1e-5).sqrt()).relu());
      auto [m2, v2] = stats(b);
      mean2 += m2 / 3;
      var2 += v2 / 3;
    }
  }
  const int64_t layers = largedet::engine::update_bn_stats(
      model, [&](int64_t i) { model.forward(batches[i]); }, 3);
  EXPECT_EQ(layers, 2);
  EXPECT_TRUE(torch::allclose(model.bn1->running_mean.to(torch::kDouble), mean1, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(model.bn1->running_var.to(torch::kDouble), var1, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(model.bn2->running_mean.to(torch::kDouble), mean2, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(model.bn2->running_var.to(torch::kDouble), var2, 1e-5, 1e-6));
  // Momentum and the batch counters are as they were.
  EXPECT_EQ(model.bn1->options.momentum(), std::optional<double>(0.1));
  EXPECT_EQ(model.bn2->options.momentum(), std::optional<double>(0.1));
  EXPECT_TRUE(model.bn1->num_batches_tracked.equal(tracked1));
  EXPECT_TRUE(model.bn2->num_batches_tracked.equal(tracked2));
}

TEST(PreciseBN, LeavesModelsWithoutBatchNormAloneAndRefusesNoBatches) {
  torch::nn::Sequential plain(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 1, 1)));
  int calls = 0;
  EXPECT_EQ(largedet::engine::update_bn_stats(
                *plain, [&](int64_t) { ++calls; }, 2),
            0);
  EXPECT_EQ(calls, 0);
  TwoNorms model;
  EXPECT_THROW(largedet::engine::update_bn_stats(
                   model, [](int64_t) {}, 0),
               largedet::Error);
  // A failing batch leaves the momentum restored.
  EXPECT_THROW(largedet::engine::update_bn_stats(
                   model, [](int64_t) { throw largedet::Error("loader failed", "test"); }, 2),
               largedet::Error);
  EXPECT_EQ(model.bn1->options.momentum(), std::optional<double>(0.1));
}

}  // namespace
