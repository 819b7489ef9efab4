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

TEST(LRSchedule, FromConfigAndBadNames) {
  Config config = Config::defaults();
  config.apply_overrides({"SOLVER.LR_SCHEDULER_NAME=WarmupCosineLR", "SOLVER.WARMUP_ITERS=10",
                          "SOLVER.BASE_LR_END=0.002"});
  LRSchedule s = LRSchedule::from_config(config);
  EXPECT_EQ(s.options().decay, DecayMethod::kCosine);
  EXPECT_DOUBLE_EQ(s.options().cosine_end_factor, 0.1);       // BASE_LR_END / BASE_LR
  EXPECT_NEAR(s.lr(10), 0.02, 1e-8);                          // warmup done, cosine barely started
  EXPECT_THROW(parse_decay_method("cosine", "here"), Error);  // detectron2's names only
  EXPECT_EQ(parse_decay_method("WarmupPolyLR", "here"), DecayMethod::kPoly);
  try {
    parse_warmup_method("linaer", "SOLVER.WARMUP_METHOD");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'linear'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("SOLVER.WARMUP_METHOD"), std::string::npos);
  }
  // A config whose batch scaling was not applied is refused, not silently left unscaled.
  config.apply_overrides({"SOLVER.REFERENCE_BATCH=16"});
  EXPECT_THROW(LRSchedule::from_config(config), Error);
}

}  // namespace
}  // namespace largedet::solver
