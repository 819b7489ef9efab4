// Gradient clipping against a double-precision reference written from the definitions in
// include/largedet/solver/gradient_clipping.h.
#include "largedet/solver/gradient_clipping.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "largedet/core/config.h"
#include "largedet/core/error.h"

namespace {

using largedet::solver::clip_gradients;
using largedet::solver::ClipType;
using largedet::solver::GradientClippingOptions;
using Values = std::vector<std::vector<double>>;

double p_norm(const std::vector<double>& x, double p) {
  double out = 0;
  for (double e : x)
    out = std::isinf(p) ? std::max(out, std::abs(e)) : out + std::pow(std::abs(e), p);
  return std::isinf(p) ? out : std::pow(out, 1 / p);
}

Values reference(Values g, const GradientClippingOptions& o) {
  const double limit = o.clip_value(), p = o.norm_type();
  if (o.type() == ClipType::kValue) {
    for (auto& x : g)
      for (double& e : x) e = std::clamp(e, -limit, limit);
    return g;
  }
  std::vector<double> norms;
  for (const auto& x : g) norms.push_back(p_norm(x, p));
  const double total = p_norm(norms, p);
  for (size_t k = 0; k < g.size(); ++k) {
    const double norm = o.type() == ClipType::kNorm ? norms[k] : total;
    const double coefficient = std::min(1.0, limit / (norm + 1e-6));
    for (double& e : g[k]) e *= coefficient;
  }
  return g;
}

Values values_of(const std::vector<torch::Tensor>& tensors) {
  Values out;
  for (const auto& t : tensors) {
    auto d = t.to(torch::kDouble).contiguous();
    out.emplace_back(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
  }
  return out;
}

TEST(GradientClipping, MatchesTheDoublePrecisionReference) {
  torch::manual_seed(3);
  const double inf = std::numeric_limits<double>::infinity();
  int cases = 0;
  for (ClipType type : {ClipType::kValue, ClipType::kNorm, ClipType::kFullModel})
    for (double p : {1.0, 2.0, 3.5, inf})
      for (double limit : {0.05, 1.0, 1e3}) {  // some tensors clipped, all, none
        std::vector<torch::Tensor> grads = {torch::randn({7, 3}), torch::randn({5}) * 4,
                                            torch::randn({2, 2, 3}) * 0.01};
        const Values expected = reference(
            values_of(grads), GradientClippingOptions().type(type).clip_value(limit).norm_type(p));
        clip_gradients(grads, GradientClippingOptions().type(type).clip_value(limit).norm_type(p));
        const Values got = values_of(grads);
        SCOPED_TRACE(testing::Message()
                     << "type " << int(type) << " p " << p << " limit " << limit);
        for (size_t k = 0; k < got.size(); ++k)
          for (size_t i = 0; i < got[k].size(); ++i)
            EXPECT_NEAR(got[k][i], expected[k][i], 1e-6 * (1 + std::abs(expected[k][i])));
        ++cases;
      }
  EXPECT_EQ(cases, 36);
}

TEST(GradientClipping, FullModelBoundsTheJointNormAndKeepsDirections) {
  std::vector<torch::Tensor> grads = {torch::full({4}, 3.0), torch::full({4}, 4.0)};  // norm 10
  clip_gradients(grads, GradientClippingOptions().type(ClipType::kFullModel).clip_value(1.0));
  const double joint =
      std::sqrt(grads[0].square().sum().item<double>() + grads[1].square().sum().item<double>());
  EXPECT_NEAR(joint, 1.0, 1e-6);
  EXPECT_NEAR(grads[1][0].item<double>() / grads[0][0].item<double>(), 4.0 / 3.0, 1e-6);
}

TEST(GradientClipping, SkipsUndefinedGradientsAndRefusesBadBounds) {
  std::vector<torch::Tensor> grads = {torch::Tensor(), torch::full({2}, 5.0)};
  clip_gradients(grads, GradientClippingOptions().type(ClipType::kNorm).clip_value(1.0));
  EXPECT_NEAR(grads[1].norm().item<double>(), 1.0, 1e-6);
  EXPECT_THROW(clip_gradients(grads, GradientClippingOptions().clip_value(0)), largedet::Error);
  EXPECT_THROW(clip_gradients(grads, GradientClippingOptions().norm_type(-1)), largedet::Error);
}

TEST(GradientClipping, BuiltFromDetectron2Keys) {
  auto config = largedet::Config::defaults();
  EXPECT_FALSE(largedet::solver::gradient_clipping_from_config(config).has_value());
  config.apply_overrides(
      {"SOLVER.CLIP_GRADIENTS.ENABLED=true", "SOLVER.CLIP_GRADIENTS.CLIP_TYPE=full_model",
       "SOLVER.CLIP_GRADIENTS.CLIP_VALUE=0.5", "SOLVER.CLIP_GRADIENTS.NORM_TYPE=1"});
  const auto options = largedet::solver::gradient_clipping_from_config(config);
  ASSERT_TRUE(options.has_value());
  EXPECT_EQ(options->type(), ClipType::kFullModel);
  EXPECT_EQ(options->clip_value(), 0.5);
  EXPECT_EQ(options->norm_type(), 1.0);
  EXPECT_THROW(config.apply_overrides({"SOLVER.CLIP_GRADIENTS.CLIP_TYPE=global"}), largedet::Error);
}

}  // namespace
