#include <gtest/gtest.h>

#include <cmath>

#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/solver/lr_schedule.h"

namespace largedet::solver {
namespace {

LRScheduleOptions base() {
  LRScheduleOptions o;
  o.base_lr = 0.02;
  o.global_batch = 16;
  o.reference_batch = 16;
  o.warmup_iters = 100;
  o.warmup_factor = 0.001;
  o.steps = {600, 800};
  o.gamma = 0.1;
  o.max_iter = 1000;
  return o;
}

TEST(LRSchedule, LinearWarmupBoundaries) {
  LRSchedule s(base());
  EXPECT_DOUBLE_EQ(s.factor(0), 0.001);
  EXPECT_DOUBLE_EQ(s.factor(50), 0.001 * 0.5 + 0.5);
  EXPECT_DOUBLE_EQ(s.factor(99), 0.001 * 0.01 + 0.99);
  EXPECT_DOUBLE_EQ(s.factor(100), 1.0);
  EXPECT_DOUBLE_EQ(s.lr(100), 0.02);
}

TEST(LRSchedule, ExponentialAndConstantWarmup) {
  auto o = base();
  o.warmup_method = WarmupMethod::kExponential;
  LRSchedule e(o);
  EXPECT_DOUBLE_EQ(e.factor(0), 0.001);
  EXPECT_NEAR(e.factor(50), std::pow(0.001, 0.5), 1e-15);
  EXPECT_DOUBLE_EQ(e.factor(100), 1.0);
  o.warmup_method = WarmupMethod::kConstant;
  o.warmup_factor = 1.0 / 3;
  LRSchedule c(o);
  EXPECT_DOUBLE_EQ(c.factor(0), 1.0 / 3);
  EXPECT_DOUBLE_EQ(c.factor(99), 1.0 / 3);
  EXPECT_DOUBLE_EQ(c.factor(100), 1.0);
}

TEST(LRSchedule, MultiStepDecaysAtEachStep) {
  LRSchedule s(base());
  EXPECT_DOUBLE_EQ(s.factor(599), 1.0);
  EXPECT_NEAR(s.factor(600), 0.1, 1e-15);
  EXPECT_NEAR(s.factor(799), 0.1, 1e-15);
  EXPECT_NEAR(s.factor(800), 0.01, 1e-15);
}

TEST(LRSchedule, CosineAndPoly) {
  auto o = base();
  o.warmup_iters = 0;
  o.decay = DecayMethod::kCosine;
  o.cosine_end_factor = 0.1;
  LRSchedule c(o);
  EXPECT_DOUBLE_EQ(c.factor(0), 1.0);
  EXPECT_NEAR(c.factor(500), 0.55, 1e-15);
  EXPECT_NEAR(c.factor(1000), 0.1, 1e-15);
  EXPECT_NEAR(c.factor(2000), 0.1, 1e-15);
  o.decay = DecayMethod::kPoly;
  o.poly_power = 2;
  LRSchedule p(o);
  EXPECT_NEAR(p.factor(500), 0.25, 1e-15);
  EXPECT_DOUBLE_EQ(p.factor(1000), 0.0);
}

TEST(LRSchedule, ScalingRules) {
  auto o = base();
  o.global_batch = 1024;
  LRSchedule linear(o);
  EXPECT_DOUBLE_EQ(linear.scale(), 64);
  EXPECT_DOUBLE_EQ(linear.lr(100), 0.02 * 64);
  o.scaling_rule = ScalingRule::kSqrt;
  EXPECT_DOUBLE_EQ(LRSchedule(o).scale(), 8);
  o.scaling_rule = ScalingRule::kNone;
  EXPECT_DOUBLE_EQ(LRSchedule(o).scale(), 1);
}

TEST(LRSchedule, ScaleScheduleShrinksIterationsByTheBatchRatio) {
  auto o = base();
  o.global_batch = 64;  // 4x the reference
  o.scale_schedule = true;
  LRSchedule s(o);
  EXPECT_EQ(s.options().warmup_iters, 25);
  EXPECT_EQ(s.options().max_iter, 250);
  EXPECT_EQ(s.options().steps, (std::vector<int64_t>{150, 200}));
  EXPECT_NEAR(s.factor(150), 4 * 0.1, 1e-12);
}

TEST(LRSchedule, FromConfigAndBadNames) {
  Config config = Config::defaults();
  config.apply_overrides({"SOLVER.IMS_PER_BATCH=1024", "SOLVER.REFERENCE_BATCH=16",
                          "SOLVER.LR_SCHEDULER_NAME=cosine", "SOLVER.WARMUP_ITERS=10"});
  LRSchedule s = LRSchedule::from_config(config);
  EXPECT_DOUBLE_EQ(s.scale(), 64);
  EXPECT_EQ(s.options().decay, DecayMethod::kCosine);
  config.apply_overrides({"SOLVER.WARMUP_METHOD=linaer"});
  try {
    LRSchedule::from_config(config);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'linear'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("SOLVER.WARMUP_METHOD"), std::string::npos);
  }
  auto o = base();
  o.reference_batch = 0;
  EXPECT_THROW(LRSchedule{o}, Error);
}

}  // namespace
}  // namespace largedet::solver
