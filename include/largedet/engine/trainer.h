// The training loop behind `largedet train` (docs/engine.md, "Trainer and hooks"). Iteration-based,
// as detectron2: SOLVER.MAX_ITER optimizer steps of SOLVER.IMS_PER_BATCH images in total over all
// ranks, each rank taking IMS_PER_BATCH / world_size of them in micro-batches of
// SOLVER.IMS_PER_DEVICE (gradient accumulation when there is more than one).
//
//   train():  resume or start; hooks' before_train
//             each iteration: hooks' before_step
//                             run_step: micro-batches (forward, losses summed, backward; the
//                                       allreduce overlaps the last backward), fp16 unscaling and
//                                       overflow check (LossScaler), one host read of the losses,
//                                       one agreement over ranks (a non-finite loss anywhere, an
//                                       overflow, a stop request), gradient clipping, the step
//                             hooks' after_step
//             hooks' after_train
//
// Everything else is a hook (hooks.h): the LR schedule, metrics, checkpoints, precise BN,
// evaluation, the non-finite guard and the stop signal. A library user adds behaviour with
// register_hooks(), as with detectron2's HookBase, without editing the engine.
//
// Resuming: the checkpoint holds model, optimizer, schedule, loss scaler, iteration and RNG; the
// loader skips the batches already consumed and the model's samplers are reseeded per step from
// (SEED, iteration, rank, micro-batch), so on CPU a resumed run ends bit-identical to one that
// never stopped.
#pragma once

#include <c10/core/Device.h>

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "largedet/core/config.h"
#include "largedet/data/batch.h"
#include "largedet/data/records.h"
#include "largedet/distributed/process_group.h"
#include "largedet/modeling/detector.h"

namespace torch::optim {
class Optimizer;
}

namespace largedet::solver {
class LRScheduler;
}

namespace largedet::engine {

class Trainer;
class LossScaler;

struct TrainOptions {
  std::string output_dir;  // empty: OUTPUT_DIR from the config
  // Continue from output_dir's newest checkpoint that verifies (from scratch if it has none).
  bool resume = false;
  // Start at iteration 0 although output_dir holds checkpoints, moving them aside; without it (or
  // resume) such a directory is an error, so that no run overwrites another's checkpoints.
  bool from_scratch = false;
};

struct TrainResult {
  int64_t start_iteration = 0;  // where this run began (> 0 when resumed)
  int64_t iteration = 0;        // iterations complete when train() returned
  bool interrupted = false;     // stopped by SIGINT/SIGTERM after saving a checkpoint
  int stop_signal = 0;          // the signal that stopped it on this rank (0: another rank's)
  int64_t skipped_steps = 0;    // steps skipped for non-finite losses or fp16 overflow
  std::string last_checkpoint;  // path of the last checkpoint written ("" if none)
  int64_t bad_inputs = 0;       // cases of bad input (skipped, clipped or kept) on this rank
  std::map<std::string, double> evaluation;  // the last evaluation's scalars (rank 0)
};

// What the last run_step did, for the hooks' after_step.
struct StepOutcome {
  std::map<std::string, double> losses;  // this rank's means over micro-batches, and total_loss
  std::set<std::string> non_finite;      // this rank's losses that were NaN or Inf
  bool any_non_finite = false;           // a loss was not finite on some rank: no step taken
  bool overflow = false;                 // fp16 gradients overflowed on some rank: no step taken
  bool stepped = false;                  // the optimizer stepped
  double data_time = 0;                  // seconds waiting for the loader
  double lr = 0;                         // the first parameter group's learning rate
};

// How a rank's share of the global batch is split (SOLVER.IMS_PER_BATCH, IMS_PER_DEVICE).
struct BatchPlan {
  int64_t per_rank = 0;    // images per rank and iteration
  int64_t per_device = 0;  // images per forward/backward
  int64_t micro_batches = 0;
};

// detectron2's HookBase. Every rank runs every hook, in registration order; a hook that does a
// collective must do it on every rank. iteration() is the iteration being run (0-based), so in
// after_step `trainer.iteration() + 1` iterations are complete.
class HookBase {
 public:
  virtual ~HookBase() = default;
  virtual void before_train(Trainer&) {}
  virtual void after_train(Trainer&) {}
  virtual void before_step(Trainer&) {}
  virtual void after_step(Trainer&) {}
};

class Trainer {
 public:
  // Sets up the distributed group, device, model, optimizer, schedule, data and the default
  // hooks (default_hooks()). Throws largedet::Error for bad configuration.
  explicit Trainer(const Config& config, const TrainOptions& options = {});
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Appended after the hooks already registered.
  void register_hooks(const std::vector<std::shared_ptr<HookBase>>& hooks);
  // Runs from the start (or the checkpoint to resume) to SOLVER.MAX_ITER, or until a stop is
  // agreed. Throws largedet::Error when a hook does (e.g. SOLVER.MAX_BAD_STEPS non-finite steps
  // in a row). Call once.
  TrainResult train();

  // What hooks read.
  const Config& config() const;  // the recipe as this run uses it (resolve_recipe)
  const std::string& output_dir() const;
  int rank() const;
  int world_size() const;
  distributed::ProcessGroup* group() const;
  const c10::Device& device() const;
  const BatchPlan& batch_plan() const;
  uint64_t seed() const;  // SEED, from which every step's sampler seed is derived
  int64_t iteration() const;
  int64_t start_iteration() const;
  int64_t max_iter() const;
  const StepOutcome& last_step() const;
  std::shared_ptr<const data::Dataset> dataset() const;
  modeling::DetectorImpl& model();
  torch::optim::Optimizer& optimizer();
  solver::LRScheduler& scheduler();
  TrainResult& result();  // hooks record evaluations and checkpoints here

  // One micro-batch's losses as training computes them: on this rank's device, under the
  // configured autocast, the model's samplers seeded with `seed`. No backward.
  modeling::LossMap forward(const data::Batch& batch, uint64_t seed);
  // This rank asks to stop; the next step's agreement stops every rank after that iteration.
  void request_stop();
  // All ranks agreed to stop after the current iteration (checkpointed, not evaluated).
  bool stopping() const;
  // A hook's own agreement to stop (every rank calls it alike, as EvalHook after an interrupted
  // evaluation): stopping() from now on, and no further iteration.
  void stop_agreed();
  // Writes the checkpoint of iteration() + 1 on rank 0 (every rank calls it); returns its path.
  std::string save_checkpoint();
  // Rank 0 appends `scalars` to metrics.jsonl and TensorBoard (every rank calls it).
  void write_metrics(int64_t iteration, const std::map<std::string, double>& scalars);

 private:
  struct State;
  void resume_or_start();
  void run_step();
  torch::Tensor agvm_agreement(std::vector<torch::Tensor>& half_a);
  void optimizer_step();  // with AGVM's factors on the groups' LRs
  void write_agvm_metrics(const std::vector<double>& variances);
  std::unique_ptr<State> s_;
};

// The standard hooks for `config`, in order: LR schedule, stop signal, non-finite guard, periodic
// writer, precise BN (TEST.PRECISE_BN.ENABLED), periodic checkpointer (with the final weights),
// evaluation (TEST.EVAL_PERIOD > 0). The Trainer registers them itself.
std::vector<std::shared_ptr<HookBase>> default_hooks(const Trainer& trainer);

// Every check `train` makes of a resolved recipe before it reads any data (docs/engine.md,
// "Configuration"): the batch split over `world_size` ranks, SOLVER.MAX_ITER, the input sizes
// against INPUT.MAX_IMAGE_PIXELS (data::check_input_sizes), and the checks
// across keys that building the model makes (it is built on the CPU, without weights, and
// dropped). `largedet config --dump` runs it, so that it refuses what `train` refuses.
void check_recipe(const Config& config, int world_size);

// Trainer(config, options).train(): what `largedet train` runs.
TrainResult train(const Config& config, const TrainOptions& options = {});

// The seed of the model's random choices for one forward (see DetectorImpl::reseed): `forward` is
// its index in the global batch, micro_batch * world_size + rank, so that layouts which give a
// forward the same images (one image per forward on 1 rank x 4 micro-batches or 2 x 2, as the
// loader deals them) draw the same.
uint64_t step_seed(uint64_t seed, int64_t iteration, int64_t forward);

}  // namespace largedet::engine
