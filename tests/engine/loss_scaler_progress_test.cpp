#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "largedet/core/error.h"
#include "largedet/engine/loss_scaler.h"
#include "largedet/engine/progress.h"
#include "largedet/engine/trainer.h"

namespace {

using largedet::engine::LossScaler;
using largedet::engine::LossScalerOptions;

TEST(LossScaler, BacksOffOnOverflowAndGrowsAfterTheInterval) {
  LossScalerOptions options;
  options.init_scale = 1024;
  options.growth_interval = 3;
  LossScaler scaler(true, options);
  EXPECT_EQ(scaler.scale(), 1024);
  EXPECT_FALSE(scaler.update(true));  // overflow: skip, halve
  EXPECT_EQ(scaler.scale(), 512);
  EXPECT_TRUE(scaler.update(false));
  EXPECT_TRUE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 512);
  EXPECT_TRUE(scaler.update(false));  // third good step in a row: double
  EXPECT_EQ(scaler.scale(), 1024);
  EXPECT_TRUE(scaler.update(false));
  EXPECT_FALSE(scaler.update(true));  // an overflow resets the count
  EXPECT_TRUE(scaler.update(false));
  EXPECT_TRUE(scaler.update(false));
  EXPECT_EQ(scaler.scale(), 512);
}

TEST(LossScaler, StateRoundTripsAndRejectsGarbage) {
  LossScalerOptions options;
  options.init_scale = 3.0e4;
  options.growth_interval = 2;
  LossScaler a(true, options);
  a.update(false);
  a.update(true);
  a.update(false);
  LossScaler b(true, options);
  b.load_state(a.state());
  EXPECT_EQ(b.scale(), a.scale());
  a.update(false);
  b.update(false);
  EXPECT_EQ(b.scale(), a.scale());  // same count of good steps carried over
  EXPECT_THROW(b.load_state("garbage"), largedet::Error);
  EXPECT_THROW(b.load_state("-0x1p+1 3"), largedet::Error);
}

TEST(LossScaler, DisabledAlwaysStepsAtScaleOne) {
  LossScaler scaler(false);
  EXPECT_EQ(scaler.scale(), 1.0);
  EXPECT_TRUE(scaler.update(true));
}

TEST(LossScaler, UnscalesInOnePassAndFlagsNonFiniteGradients) {
  LossScalerOptions options;
  options.init_scale = 8;
  LossScaler scaler(true, options);
  std::vector<torch::Tensor> grads = {torch::full({3}, 4.0), torch::full({2, 2}, -16.0)};
  auto found_inf = scaler.unscale_(grads);
  EXPECT_EQ(found_inf.item<float>(), 0.0f);
  EXPECT_TRUE(grads[0].eq(0.5).all().item<bool>());
  EXPECT_TRUE(grads[1].eq(-2.0).all().item<bool>());
  for (double bad : {std::numeric_limits<double>::infinity(), std::nan("")}) {
    std::vector<torch::Tensor> with_bad = {torch::ones({2}), torch::tensor({1.0f, float(bad)})};
    EXPECT_EQ(scaler.unscale_(with_bad).item<float>(), 1.0f) << bad;
  }
  // bf16 and fp32 training scale nothing: the gradients are left as they are.
  LossScaler disabled(false);
  std::vector<torch::Tensor> untouched = {torch::full({2}, 4.0)};
  EXPECT_EQ(disabled.unscale_(untouched).item<float>(), 0.0f);
  EXPECT_TRUE(untouched[0].eq(4.0).all().item<bool>());
}

TEST(Progress, FormatsDurationsAndBars) {
  EXPECT_EQ(largedet::engine::format_duration(42.4), "42s");
  EXPECT_EQ(largedet::engine::format_duration(185), "3:05");
  EXPECT_EQ(largedet::engine::format_duration(3723), "1:02:03");
  EXPECT_EQ(largedet::engine::format_duration(std::nan("")), "?");
  largedet::engine::Progress progress(0, 100, true, false);
  EXPECT_TRUE(std::isnan(progress.eta_seconds(0)));
  const std::string bar = progress.render(50, "loss 0.5");
  EXPECT_EQ(bar.substr(0, 26), "[============>           ]");
  EXPECT_NE(bar.find(" 50/100  50%"), std::string::npos) << bar;
  EXPECT_NE(bar.find("loss 0.5"), std::string::npos) << bar;
}

TEST(StepSeed, DiffersPerIterationAndForward) {
  using largedet::engine::step_seed;
  EXPECT_EQ(step_seed(1, 2, 3), step_seed(1, 2, 3));
  EXPECT_NE(step_seed(1, 2, 3), step_seed(1, 3, 3));
  EXPECT_NE(step_seed(1, 2, 3), step_seed(1, 2, 4));
  EXPECT_NE(step_seed(1, 2, 3), step_seed(2, 2, 3));
}

}  // namespace
