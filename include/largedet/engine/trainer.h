// The training loop behind `largedet train` (docs/architecture.md, engine layer). Iteration-based,
// as detectron2: SOLVER.MAX_ITER optimizer steps of SOLVER.IMS_PER_BATCH images in total over all
// ranks, each rank taking IMS_PER_BATCH / world_size of them in micro-batches of
// SOLVER.IMS_PER_DEVICE (gradient accumulation when there is more than one).
//
//   each iteration:  LR from the schedule (scaling rule, warmup, decay)
//                    micro-batches: forward, losses summed, backward (GradientSync overlaps the
//                                   allreduce with the last micro-batch's backward)
//                    agree over ranks: were all losses finite? was a stop signal received?
//                    optimizer step (skipped when a loss was NaN/Inf anywhere, or fp16 overflowed)
//                    metrics every SOLVER.LOG_PERIOD, checkpoint every SOLVER.CHECKPOINT_PERIOD,
//                    evaluation every TEST.EVAL_PERIOD (and at the end)
//
// Resuming: the checkpoint holds model, optimizer, schedule, loss scaler, iteration and RNG; the
// loader skips the batches already consumed and the model's samplers are reseeded per step from
// (SEED, iteration, rank, micro-batch), so on CPU a resumed run ends bit-identical to one that
// never stopped.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "largedet/core/config.h"

namespace largedet::engine {

struct TrainOptions {
  std::string output_dir;  // empty: OUTPUT_DIR from the config
  bool resume = false;     // continue from output_dir's last checkpoint (if there is one)
};

struct TrainResult {
  int64_t start_iteration = 0;  // where this run began (> 0 when resumed)
  int64_t iteration = 0;        // iterations complete when train() returned
  bool interrupted = false;     // stopped by SIGINT/SIGTERM after saving a checkpoint
  int64_t skipped_steps = 0;    // steps skipped for non-finite losses or fp16 overflow
  std::string last_checkpoint;  // path of the last checkpoint written ("" if none)
  int64_t bad_inputs = 0;       // training images skipped as unreadable or invalid (this rank)
  std::map<std::string, double> evaluation;  // the last evaluation's scalars (rank 0)
};

// Runs the whole job on this process's rank (distributed set-up from the environment, as
// `largedet launch`, torchrun, mpirun and srun provide it). Throws largedet::Error for bad
// configuration, and when SOLVER.MAX_BAD_STEPS steps in a row had non-finite losses.
TrainResult train(const Config& config, const TrainOptions& options = {});

// The seed of the model's random choices for one micro-batch (see DetectorImpl::reseed).
uint64_t step_seed(uint64_t seed, int64_t iteration, int rank, int micro_batch);

}  // namespace largedet::engine
