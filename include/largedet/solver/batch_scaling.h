// How a recipe's batch, learning rate and schedule become the ones a run uses, in one place for
// detectron2's SOLVER.REFERENCE_WORLD_SIZE (its DefaultTrainer.auto_scale_workers) and our
// SOLVER.REFERENCE_BATCH / SCALING_RULE / SCALE_SCHEDULE (docs/scaling.md):
//   1. REFERENCE_WORLD_SIZE R > 0 and a world of W ranks: IMS_PER_BATCH x W/R, BASE_LR x W/R
//      (unless REFERENCE_BATCH is set: then the scaling rule follows the new batch), and the
//      iteration counts / (W/R).
//   2. REFERENCE_BATCH B_ref > 0: BASE_LR is meant for B_ref; the LR used is
//      BASE_LR x rule(IMS_PER_BATCH / B_ref) (BASE_LR_END too), and with SCALE_SCHEDULE the
//      iteration counts shrink by the same batch ratio (same epochs). REFERENCE_BATCH 0 (the
//      default): BASE_LR is meant for IMS_PER_BATCH itself, as in detectron2.
//   3. WEIGHT_DECAY_BIAS null follows WEIGHT_DECAY, as in detectron2.
// "Iteration counts" are MAX_ITER, STEPS, WARMUP_ITERS, CHECKPOINT_PERIOD, TEST.EVAL_PERIOD and
// LAMB.DECAY_PERIOD; the warmup never shrinks below kMinScaledWarmupIters (or its own length).
// The result is written back into the config (BASE_LR becomes the LR used, REFERENCE_BATCH 0,
// a non-zero REFERENCE_WORLD_SIZE the world size, SCALE_SCHEDULE false), so applying it twice
// changes nothing and `largedet config --dump` shows what a run will use.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace largedet {
class Config;
}

namespace largedet::solver {

// Large batches need their warmup most: scaling never takes it below this many iterations.
constexpr int64_t kMinScaledWarmupIters = 100;

// Returns one line per change made, saying what and why (for the run's log).
std::vector<std::string> apply_batch_scaling(Config& config, int world_size);

}  // namespace largedet::solver
