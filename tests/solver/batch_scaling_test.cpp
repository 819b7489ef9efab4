// apply_batch_scaling: detectron2's BASE_LR semantics, our REFERENCE_BATCH / SCALING_RULE /
// SCALE_SCHEDULE, and detectron2's REFERENCE_WORLD_SIZE, through one implementation.
#include <gtest/gtest.h>

#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/solver/batch_scaling.h"

namespace largedet::solver {
namespace {

Config recipe(const std::vector<std::string>& overrides) {
  Config c = Config::defaults();
  c.apply_overrides({"SOLVER.BASE_LR=0.02", "SOLVER.MAX_ITER=1000", "SOLVER.STEPS=[600, 800]",
                     "SOLVER.WARMUP_ITERS=400", "SOLVER.CHECKPOINT_PERIOD=200",
                     "TEST.EVAL_PERIOD=100", "SOLVER.LAMB.DECAY_PERIOD=200"});
  c.apply_overrides(overrides);
  return c;
}

TEST(BatchScaling, BaseLrIsMeantForImsPerBatchLikeDetectron2) {
  // detectron2: IMS_PER_BATCH 64 with BASE_LR 0.08 trains at 0.08, not 0.32.
  auto c = recipe({"SOLVER.IMS_PER_BATCH=64", "SOLVER.BASE_LR=0.08"});
  apply_batch_scaling(c, 1);
  EXPECT_DOUBLE_EQ(c.get<double>("SOLVER.BASE_LR"), 0.08);
  EXPECT_EQ(c.get<int64_t>("SOLVER.MAX_ITER"), 1000);
}

TEST(BatchScaling, ReferenceBatchScalesTheLrByTheRule) {
  auto linear = recipe({"SOLVER.IMS_PER_BATCH=1024", "SOLVER.REFERENCE_BATCH=16"});
  const auto notes = apply_batch_scaling(linear, 1);
  EXPECT_DOUBLE_EQ(linear.get<double>("SOLVER.BASE_LR"), 0.02 * 64);
  EXPECT_EQ(linear.get<int64_t>("SOLVER.MAX_ITER"), 1000);  // no SCALE_SCHEDULE
  ASSERT_FALSE(notes.empty());
  EXPECT_NE(notes.back().find("x 64"), std::string::npos) << notes.back();
  auto sqrt = recipe(
      {"SOLVER.IMS_PER_BATCH=1024", "SOLVER.REFERENCE_BATCH=16", "SOLVER.SCALING_RULE=sqrt"});
  apply_batch_scaling(sqrt, 1);
  EXPECT_DOUBLE_EQ(sqrt.get<double>("SOLVER.BASE_LR"), 0.02 * 8);
  auto none = recipe(
      {"SOLVER.IMS_PER_BATCH=1024", "SOLVER.REFERENCE_BATCH=16", "SOLVER.SCALING_RULE=none"});
  apply_batch_scaling(none, 1);
  EXPECT_DOUBLE_EQ(none.get<double>("SOLVER.BASE_LR"), 0.02);
}

TEST(BatchScaling, ScaleScheduleShrinksEveryIterationCountWithAWarmupFloor) {
  auto c = recipe(
      {"SOLVER.IMS_PER_BATCH=64", "SOLVER.REFERENCE_BATCH=16", "SOLVER.SCALE_SCHEDULE=true"});
  apply_batch_scaling(c, 1);
  EXPECT_EQ(c.get<int64_t>("SOLVER.MAX_ITER"), 250);
  EXPECT_EQ(c.get<std::vector<int64_t>>("SOLVER.STEPS"), (std::vector<int64_t>{150, 200}));
  EXPECT_EQ(c.get<int64_t>("SOLVER.WARMUP_ITERS"), kMinScaledWarmupIters);  // 400 / 4 = 100
  EXPECT_EQ(c.get<int64_t>("SOLVER.CHECKPOINT_PERIOD"), 50);
  EXPECT_EQ(c.get<int64_t>("TEST.EVAL_PERIOD"), 25);
  EXPECT_EQ(c.get<int64_t>("SOLVER.LAMB.DECAY_PERIOD"), 50);
  auto big = recipe(
      {"SOLVER.IMS_PER_BATCH=1024", "SOLVER.REFERENCE_BATCH=16", "SOLVER.SCALE_SCHEDULE=true"});
  apply_batch_scaling(big, 1);
  EXPECT_EQ(big.get<int64_t>("SOLVER.MAX_ITER"), 16);
  // 400 / 64 would be 6; the floor keeps 100, but never more than the run.
  EXPECT_EQ(big.get<int64_t>("SOLVER.WARMUP_ITERS"), 16);
  auto floor = recipe(
      {"SOLVER.IMS_PER_BATCH=128", "SOLVER.REFERENCE_BATCH=16", "SOLVER.SCALE_SCHEDULE=true"});
  apply_batch_scaling(floor, 1);
  EXPECT_EQ(floor.get<int64_t>("SOLVER.MAX_ITER"), 125);
  EXPECT_EQ(floor.get<int64_t>("SOLVER.WARMUP_ITERS"), 100);  // 400 / 8 = 50 < floor
  auto without_reference = recipe({"SOLVER.SCALE_SCHEDULE=true"});
  EXPECT_THROW(apply_batch_scaling(without_reference, 1), Error);
}

TEST(BatchScaling, ReferenceWorldSizeScalesLikeAutoScaleWorkers) {
  // detectron2's DefaultTrainer.auto_scale_workers: written for 8 GPUs, run on 16.
  auto c =
      recipe({"SOLVER.IMS_PER_BATCH=16", "SOLVER.REFERENCE_WORLD_SIZE=8",
              "SOLVER.WARMUP_ITERS=1000", "SOLVER.MAX_ITER=90000", "SOLVER.STEPS=(60000, 80000)",
              "SOLVER.CHECKPOINT_PERIOD=5000", "TEST.EVAL_PERIOD=5000"});
  apply_batch_scaling(c, 16);
  EXPECT_EQ(c.get<int64_t>("SOLVER.IMS_PER_BATCH"), 32);
  EXPECT_DOUBLE_EQ(c.get<double>("SOLVER.BASE_LR"), 0.04);
  EXPECT_EQ(c.get<int64_t>("SOLVER.MAX_ITER"), 45000);
  EXPECT_EQ(c.get<std::vector<int64_t>>("SOLVER.STEPS"), (std::vector<int64_t>{30000, 40000}));
  EXPECT_EQ(c.get<int64_t>("SOLVER.WARMUP_ITERS"), 500);
  EXPECT_EQ(c.get<int64_t>("SOLVER.CHECKPOINT_PERIOD"), 2500);
  EXPECT_EQ(c.get<int64_t>("TEST.EVAL_PERIOD"), 2500);
  EXPECT_EQ(c.get<int64_t>("SOLVER.REFERENCE_WORLD_SIZE"), 16);
  // With REFERENCE_BATCH the rule follows the new batch instead.
  auto rule = recipe(
      {"SOLVER.IMS_PER_BATCH=16", "SOLVER.REFERENCE_WORLD_SIZE=8", "SOLVER.REFERENCE_BATCH=16"});
  apply_batch_scaling(rule, 16);
  EXPECT_DOUBLE_EQ(rule.get<double>("SOLVER.BASE_LR"), 0.04);
  auto uneven = recipe({"SOLVER.IMS_PER_BATCH=12", "SOLVER.REFERENCE_WORLD_SIZE=8"});
  EXPECT_THROW(apply_batch_scaling(uneven, 16), Error);
}

// LR x decay x iterations stays the reference's: under the sqrt rule (LR x 8, iterations / 64 at
// 64x) the decays grow 8x, under the linear rule they stay, with no rule they grow 64x.
TEST(BatchScaling, ScaleWeightDecayKeepsTheDecayOverTheRun) {
  const std::vector<std::string> base = {
      "SOLVER.IMS_PER_BATCH=1024",  "SOLVER.REFERENCE_BATCH=16",
      "SOLVER.SCALE_SCHEDULE=true", "SOLVER.SCALE_WEIGHT_DECAY=true",
      "SOLVER.WEIGHT_DECAY=0.05",   "SOLVER.WEIGHT_DECAY_NORM=0.01",
      "SOLVER.MAX_ITER=64000"};
  for (const auto& [rule, factor] :
       std::vector<std::pair<std::string, double>>{{"sqrt", 8}, {"linear", 1}, {"none", 64}}) {
    auto overrides = base;
    overrides.push_back("SOLVER.SCALING_RULE=" + rule);
    auto c = recipe(overrides);
    apply_batch_scaling(c, 1);
    const double lr = c.get<double>("SOLVER.BASE_LR");
    const auto iterations = c.get<int64_t>("SOLVER.MAX_ITER");
    EXPECT_DOUBLE_EQ(c.get<double>("SOLVER.WEIGHT_DECAY"), 0.05 * factor) << rule;
    EXPECT_DOUBLE_EQ(c.get<double>("SOLVER.WEIGHT_DECAY_BIAS"), 0.05 * factor) << rule;
    EXPECT_DOUBLE_EQ(c.get<double>("SOLVER.WEIGHT_DECAY_NORM"), 0.01 * factor) << rule;
    // The product, against the reference's 0.02 x 0.05 x 64000.
    EXPECT_NEAR(lr * c.get<double>("SOLVER.WEIGHT_DECAY") * iterations, 0.02 * 0.05 * 64000, 1e-9)
        << rule;
    EXPECT_FALSE(c.get<bool>("SOLVER.SCALE_WEIGHT_DECAY"));
    const std::string once = c.dump();
    apply_batch_scaling(c, 1);
    EXPECT_EQ(c.dump(), once) << "applied twice";
  }
  auto unscaled = recipe(
      {"SOLVER.IMS_PER_BATCH=1024", "SOLVER.REFERENCE_BATCH=16", "SOLVER.SCALE_WEIGHT_DECAY=true"});
  EXPECT_THROW(apply_batch_scaling(unscaled, 1), Error);
  auto no_reference = recipe({"SOLVER.SCALE_WEIGHT_DECAY=true"});
  EXPECT_THROW(apply_batch_scaling(no_reference, 1), Error);
  auto off = recipe({"SOLVER.IMS_PER_BATCH=1024", "SOLVER.REFERENCE_BATCH=16",
                     "SOLVER.SCALE_SCHEDULE=true", "SOLVER.SCALING_RULE=sqrt",
                     "SOLVER.WEIGHT_DECAY=0.05"});
  apply_batch_scaling(off, 1);
  EXPECT_DOUBLE_EQ(off.get<double>("SOLVER.WEIGHT_DECAY"), 0.05);
}

TEST(BatchScaling, AppliedTwiceChangesNothing) {
  auto c = recipe({"SOLVER.IMS_PER_BATCH=64", "SOLVER.REFERENCE_BATCH=16",
                   "SOLVER.SCALE_SCHEDULE=true", "SOLVER.REFERENCE_WORLD_SIZE=2"});
  apply_batch_scaling(c, 4);
  const std::string once = c.dump();
  apply_batch_scaling(c, 4);
  EXPECT_EQ(c.dump(), once);
}

TEST(BatchScaling, WeightDecayBiasFollowsWeightDecayUnlessSet) {
  auto c = recipe({"SOLVER.WEIGHT_DECAY=0.05"});
  apply_batch_scaling(c, 1);
  EXPECT_DOUBLE_EQ(c.get<double>("SOLVER.WEIGHT_DECAY_BIAS"), 0.05);
  auto set = recipe({"SOLVER.WEIGHT_DECAY=0.05", "SOLVER.WEIGHT_DECAY_BIAS=0"});
  apply_batch_scaling(set, 1);
  EXPECT_DOUBLE_EQ(set.get<double>("SOLVER.WEIGHT_DECAY_BIAS"), 0.0);
}

}  // namespace
}  // namespace largedet::solver
