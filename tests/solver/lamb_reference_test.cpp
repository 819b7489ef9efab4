// PMD-LAMB against an independent double-precision implementation of docs/solver.md's formulas.
#include <gtest/gtest.h>
#include <torch/optim/adam.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "largedet/solver/lamb.h"
#include "solver/lamb_reference.h"

namespace largedet::solver {
namespace {

using lamb_test::Reference;
using lamb_test::to_vector;

// Runs `steps` steps of ours and of the reference on the same float32 inputs; returns the largest
// error relative to each tensor's largest reference magnitude.
double max_relative_error(const LambOptions& options, int steps, uint64_t seed) {
  torch::manual_seed(seed);
  std::vector<torch::Tensor> params = {
      torch::randn({37, 29}),   // ordinary weight
      torch::zeros({50}),       // a zero tensor: r = 1 on its first step
      torch::randn({4, 3, 3}),  // its gradient stays zero
      torch::randn({20000}),    // spans two chunks of the fused kernel
  };
  for (auto& p : params) p.set_requires_grad(true);
  std::vector<std::vector<double>> ref_w;
  for (const auto& p : params) ref_w.push_back(to_vector(p));
  Lamb ours(params, options);
  Reference reference{options, {}, {}, {}, {}, 0};
  for (int s = 0; s < steps; ++s) {
    std::vector<std::vector<double>> grads;
    for (size_t k = 0; k < params.size(); ++k) {
      torch::Tensor g = k == 2 ? torch::zeros_like(params[k]) : torch::randn_like(params[k]) * 0.1;
      params[k].mutable_grad() = g;
      grads.push_back(to_vector(g));
    }
    ours.step();
    reference.step(ref_w, grads);
  }
  double worst = 0;
  for (size_t k = 0; k < params.size(); ++k) {
    auto got = to_vector(params[k]);
    double scale = 1e-30, diff = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      scale = std::max(scale, std::abs(ref_w[k][i]));
      diff = std::max(diff, std::abs(got[i] - ref_w[k][i]));
    }
    if (diff / scale > 1e-5) ADD_FAILURE() << "tensor " << k << " error " << diff / scale;
    worst = std::max(worst, diff / scale);
  }
  return worst;
}

TEST(PmdLamb, MatchesDoublePrecisionReferenceForEveryOptionCombination) {
  int combinations = 0;
  for (DecayShape shape : {DecayShape::kLinear, DecayShape::kCosine})
    for (bool second : {true, false})
      for (BiasCorrection bias :
           {BiasCorrection::kNormalized, BiasCorrection::kGlobal, BiasCorrection::kNone})
        for (double wd : {0.0, 0.01})
          for (bool clip : {false, true})
            for (bool fused : {true, false}) {
              auto options = LambOptions(0.01)
                                 .decay_period(5)
                                 .decay_shape(shape)
                                 .decay_second_moment(second)
                                 .bias_correction(bias)
                                 .weight_decay(wd)
                                 .trust_clip(clip ? 0.5 : 0)
                                 .fused(fused);
              SCOPED_TRACE(testing::Message()
                           << "shape " << int(shape) << " second " << second << " bias "
                           << int(bias) << " wd " << wd << " clip " << clip << " fused " << fused);
              // 16 steps = three full periods of T = 5 and the start of a fourth.
              EXPECT_LE(max_relative_error(options, 16, 7 + combinations), 1e-5);
              ++combinations;
            }
  EXPECT_EQ(combinations, 96);
}

TEST(PmdLamb, DecayCoefficientFallsFromOneToZeroInEachPeriod) {
  EXPECT_DOUBLE_EQ(moment_decay(1, 200, DecayShape::kLinear), 1.0);
  EXPECT_DOUBLE_EQ(moment_decay(200, 200, DecayShape::kLinear), 0.0);
  EXPECT_DOUBLE_EQ(moment_decay(201, 200, DecayShape::kLinear), 1.0);
  EXPECT_NEAR(moment_decay(100, 200, DecayShape::kLinear), 1 - 99.0 / 199, 1e-15);
  EXPECT_DOUBLE_EQ(moment_decay(1, 200, DecayShape::kCosine), 1.0);
  EXPECT_NEAR(moment_decay(200, 200, DecayShape::kCosine), 0.0, 1e-15);
  EXPECT_DOUBLE_EQ(moment_decay(57, 0, DecayShape::kLinear), 1.0);
  EXPECT_DOUBLE_EQ(moment_decay(57, 1, DecayShape::kCosine), 1.0);
}

TEST(PmdLamb, ZeroPeriodIsPlainLamb) {
  // With d = 1 the exact normaliser S_t equals 1 - beta^t: period 0 with either correction, and
  // period 1, take the same steps.
  auto run = [](LambOptions options) {
    torch::manual_seed(3);
    auto p = torch::randn({64, 16}).set_requires_grad(true);
    Lamb lamb({p}, options);
    for (int s = 0; s < 12; ++s) {
      p.mutable_grad() = torch::randn_like(p);
      lamb.step();
    }
    return p.detach().clone();
  };
  auto base = LambOptions(0.01).weight_decay(0.01);
  auto normalized = run(LambOptions(base).decay_period(0));
  auto global = run(LambOptions(base).decay_period(0).bias_correction(BiasCorrection::kGlobal));
  auto period_one = run(LambOptions(base).decay_period(1));
  EXPECT_TRUE(torch::allclose(normalized, global, 1e-6, 1e-7));
  EXPECT_TRUE(torch::equal(normalized, period_one));
  auto decayed = run(LambOptions(base).decay_period(4));
  EXPECT_FALSE(torch::allclose(normalized, decayed, 1e-4, 1e-5));
}

TEST(PmdLamb, WithoutDecayOrTrustRatioEqualsTorchAdam) {
  torch::manual_seed(11);
  auto a = torch::randn({33, 7}).set_requires_grad(true);
  auto b = a.detach().clone().set_requires_grad(true);
  Lamb lamb(
      {a},
      LambOptions(0.003).bias_correction(BiasCorrection::kGlobal).trust_ratio(false).eps(1e-8));
  torch::optim::Adam adam({b}, torch::optim::AdamOptions(0.003).eps(1e-8));
  for (int s = 0; s < 20; ++s) {
    auto g = torch::randn_like(a);
    a.mutable_grad() = g.clone();
    b.mutable_grad() = g.clone();
    lamb.step();
    adam.step();
  }
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-7)) << (a - b).abs().max().item<double>();
}

// A run resumed on another number of threads must take the same steps, bit for bit: a tensor
// split wrongly over the threads, or a race between them, shows here. (The norms' summation order
// is fixed by the chunks; were it not, the float step would rarely show it.)
TEST(PmdLamb, FusedStepsAreTheSameOnOneAndTwoThreads) {
  auto run = [](int threads) {
    at::set_num_threads(threads);
    torch::manual_seed(5);
    auto p = torch::randn({5 * (1 << 14) + 123}).set_requires_grad(true);
    Lamb lamb({p}, LambOptions(0.01).weight_decay(0.01).decay_period(3));
    for (int s = 0; s < 4; ++s) {
      p.mutable_grad() = torch::randn_like(p);
      lamb.step();
    }
    return p.detach().clone();
  };
  const int threads = at::get_num_threads();
  auto one = run(1), two = run(2);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one, two)) << (one - two).abs().max().item<double>();
}

TEST(PmdLamb, RejectsInvalidOptions) {
  auto p = torch::zeros({2}, torch::requires_grad());
  EXPECT_THROW(Lamb({p}, LambOptions(-1)), std::exception);
  EXPECT_THROW(Lamb({p}, LambOptions(0.1).beta1(1.0)), std::exception);
  EXPECT_THROW(Lamb({p}, LambOptions(0.1).decay_period(-3)), std::exception);
}

TEST(PmdLamb, SkipsParametersWithoutGradient) {
  auto p = torch::ones({3}, torch::requires_grad());
  Lamb lamb({p}, LambOptions(0.1));
  lamb.step();
  EXPECT_TRUE(torch::equal(p, torch::ones({3})));
}

}  // namespace
}  // namespace largedet::solver
