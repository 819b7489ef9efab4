// AGVM (docs/solver.md, "AGVM"): the variance estimate against a direct computation in double,
// the factor rule against hand-worked numbers, the schedule of estimates, per-part groups and the
// checkpointed state.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "largedet/core/error.h"
#include "largedet/solver/agvm.h"
#include "largedet/solver/param_groups.h"

namespace largedet::solver {
namespace {

// Three parts of one or two parameters, gradients random, half A random too.
struct Parts {
  Parts() {
    torch::manual_seed(3);
    for (auto shape : {std::vector<int64_t>{4, 3}, {5}, {2, 2, 2}, {7}, {3}}) {
      auto p = torch::zeros(shape, torch::requires_grad());
      p.mutable_grad() = torch::randn(shape);
      params.push_back(p);
      half_a.push_back(torch::randn(shape));
    }
  }
  std::vector<std::vector<torch::Tensor>> grouped() const {
    return {{params[0], params[1]}, {params[2]}, {params[3], params[4]}};
  }
  std::vector<torch::Tensor> params, half_a;
};

// 1 - cos(a, b) with b = whole - a, over the concatenation of the given parameters, in plain
// double loops.
double direct_variance(const Parts& parts, std::vector<size_t> members) {
  double dot = 0, aa = 0, bb = 0;
  for (size_t i : members) {
    auto whole = parts.params[i].grad().reshape(-1).to(torch::kDouble);
    auto a = parts.half_a[i].reshape(-1).to(torch::kDouble);
    for (int64_t k = 0; k < whole.numel(); ++k) {
      const double x = a[k].item<double>(), y = whole[k].item<double>() - x;
      dot += x * y;
      aa += x * x;
      bb += y * y;
    }
  }
  return 1 - dot / std::sqrt(aa * bb);
}

TEST(Agvm, VarianceIsOneMinusTheCosineOfTheHalves) {
  Parts parts;
  Agvm agvm({"backbone", "fpn", "head"}, parts.grouped());
  const auto phi = agvm.variances(agvm.agreement(parts.half_a));
  ASSERT_EQ(phi.size(), 3u);
  EXPECT_NEAR(phi[0], direct_variance(parts, {0, 1}), 1e-12);
  EXPECT_NEAR(phi[1], direct_variance(parts, {2}), 1e-12);
  EXPECT_NEAR(phi[2], direct_variance(parts, {3, 4}), 1e-12);
  // Halves that agree exactly (each half the mean's half) have no variance; opposite ones 2.
  std::vector<torch::Tensor> same, opposite;
  for (const auto& p : parts.params) {
    same.push_back(p.grad() / 2);
    opposite.push_back(p.grad() * 2);  // b = whole - 2 whole = -whole
  }
  for (double v : agvm.variances(agvm.agreement(same))) EXPECT_NEAR(v, 0.0, 1e-12);
  for (double v : agvm.variances(agvm.agreement(opposite))) EXPECT_NEAR(v, 2.0, 1e-12);
}

TEST(Agvm, PartWithoutGradientCountsAsFullVariance) {
  Parts parts;
  parts.params[2].mutable_grad() = torch::Tensor();
  Agvm agvm({"backbone", "fpn", "head"}, parts.grouped());
  EXPECT_DOUBLE_EQ(agvm.variances(agvm.agreement(parts.half_a))[1], 1.0);
}

TEST(Agvm, FactorsFollowTheHandWorkedRule) {
  Parts parts;
  Agvm agvm({"backbone", "fpn", "head"}, parts.grouped(), AgvmOptions().momentum(0.9));
  // Backbone 0.5. fpn 0.25: ratio (0.500001 / 0.250001) = 1.999996..., sqrt 1.4142121...
  // head 2.0: ratio 0.25 clamps to 0.5, sqrt 0.7071068.
  agvm.update({0.5, 0.25, 2.0});
  EXPECT_DOUBLE_EQ(agvm.factors()[0], 1.0);
  EXPECT_NEAR(agvm.factors()[1], 0.9 + 0.1 * 1.4142121, 1e-7);
  EXPECT_NEAR(agvm.factors()[2], 0.9 + 0.1 * 0.7071068, 1e-7);
  // A second update moves from there: fpn's variance 1e-9 of the backbone's 0.1 clamps the ratio
  // to 10 (sqrt 3.1622777).
  agvm.update({0.1, 1e-9, 0.1});
  EXPECT_NEAR(agvm.factors()[1], 0.9 * (0.9 + 0.1 * 1.4142121) + 0.1 * 3.1622777, 1e-7);
  EXPECT_NEAR(agvm.factors()[2], 0.9 * (0.9 + 0.1 * 0.7071068) + 0.1 * 1.0, 1e-7);
  // A non-finite estimate (an overflowed step) leaves the factors alone.
  const auto before = agvm.factors();
  agvm.update({0.1, std::nan(""), 0.1});
  EXPECT_EQ(agvm.factors(), before);
  EXPECT_NEAR(agvm_target_factor(0.3, 0.3), 1.0, 1e-12);
}

TEST(Agvm, EstimatesEveryIntervalFromTheStart) {
  Parts parts;
  Agvm agvm({"a", "b", "c"}, parts.grouped(), AgvmOptions().interval(10).start_iter(25));
  std::vector<int64_t> at;
  for (int64_t it = 0; it < 60; ++it)
    if (agvm.estimates_at(it)) at.push_back(it);
  EXPECT_EQ(at, (std::vector<int64_t>{25, 35, 45, 55}));
}

TEST(Agvm, GroupsSplitByPartAndStateRoundTrips) {
  Parts parts;
  Agvm agvm({"backbone", "fpn", "head"}, parts.grouped());
  EXPECT_EQ(agvm.part_of(parts.params[3]), 2);
  EXPECT_EQ(agvm.part_of(torch::zeros({1})), -1);
  torch::nn::Module net;
  for (size_t i = 0; i < parts.params.size(); ++i)
    net.register_parameter("p" + std::to_string(i), parts.params[i]);
  ParamGroupOptions options;
  options.part_of = [&](const torch::Tensor& p) { return agvm.part_of(p); };
  const auto groups = make_param_groups(net, options);
  ASSERT_EQ(groups.size(), 3u);  // every parameter is a weight: one group per part
  for (const auto& g : groups)
    for (const auto& p : g.params) EXPECT_EQ(agvm.part_of(p), g.part);

  agvm.update({0.5, 0.25, 2.0});
  Agvm restored({"backbone", "fpn", "head"}, parts.grouped());
  restored.load_state(agvm.state());
  EXPECT_EQ(restored.factors(), agvm.factors());
  Agvm other({"backbone", "fpn", "rpn"}, parts.grouped());
  EXPECT_THROW(other.load_state(agvm.state()), Error);
  Agvm fewer({"backbone", "fpn"}, {{parts.params[0]}, {parts.params[1]}});
  EXPECT_THROW(fewer.load_state(agvm.state()), Error);
}

TEST(Agvm, RefusesOverlappingPartsAndBadOptions) {
  Parts parts;
  EXPECT_THROW(Agvm({"a", "b"}, {{parts.params[0]}, {parts.params[0]}}), Error);
  EXPECT_THROW(Agvm({"a"}, {{parts.params[0]}}), Error);
  EXPECT_THROW(Agvm({"a", "b", "c"}, parts.grouped(), AgvmOptions().interval(0)), Error);
  EXPECT_THROW(Agvm({"a", "b", "c"}, parts.grouped(), AgvmOptions().momentum(1.0)), Error);
  Agvm agvm({"a", "b", "c"}, parts.grouped());
  EXPECT_THROW(agvm.variances(torch::zeros({9})), Error);  // float, not the agreement's double
  EXPECT_THROW(agvm.agreement({parts.half_a[0]}), Error);
}

}  // namespace
}  // namespace largedet::solver
