// The standard training hooks (detectron2's engine/hooks.py), which default_hooks() registers in
// this order. Each does one thing; docs/engine.md says when each acts.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "largedet/engine/evaluator.h"
#include "largedet/engine/progress.h"
#include "largedet/engine/trainer.h"

namespace largedet::engine {

// Sets the learning rates of the iteration about to run (scaling rule, warmup, decay).
class LRScheduleHook : public HookBase {
 public:
  void before_step(Trainer& trainer) override;
};

// SIGINT / SIGTERM ask the trainer to stop at the next iteration boundary (after a checkpoint),
// acknowledged on stderr at once; a second is acknowledged and ignored (the checkpoint may be on
// its way), a third takes the default action, so that a stuck job can still be killed. The
// previous handlers come back after train() unless a signal stopped it: then the process is on
// its way out and the handler stays to the end.
class StopSignalHook : public HookBase {
 public:
  ~StopSignalHook() override;
  void before_train(Trainer& trainer) override;
  void before_step(Trainer& trainer) override;
  void after_train(Trainer& trainer) override;

 private:
  void restore();
  bool installed_ = false;
  void (*old_int_)(int) = nullptr;
  void (*old_term_)(int) = nullptr;
};

// Counts steps skipped for non-finite losses; SOLVER.MAX_BAD_STEPS of them in a row end the run
// with an error saying what to change.
class NonFiniteGuardHook : public HookBase {
 public:
  explicit NonFiniteGuardHook(int64_t max_bad_steps) : max_bad_steps_(max_bad_steps) {}
  void after_step(Trainer& trainer) override;

 private:
  int64_t max_bad_steps_;
  int64_t in_a_row_ = 0;
};

// Every SOLVER.LOG_PERIOD iterations (and at the last, and when stopping): the period's mean
// losses, lr, data time, seconds per iteration (the steps alone, not checkpoints or evaluations),
// images/s and memory, averaged over ranks, to metrics.jsonl, TensorBoard and the log; a progress
// bar on a terminal in between.
class PeriodicWriterHook : public HookBase {
 public:
  explicit PeriodicWriterHook(int64_t period) : period_(period) {}
  void before_train(Trainer& trainer) override;
  void before_step(Trainer& trainer) override;
  void after_step(Trainer& trainer) override;

 private:
  int64_t period_;
  std::unique_ptr<Progress> progress_;
  std::chrono::steady_clock::time_point step_start_;
  double step_seconds_ = 0;
  int64_t steps_ = 0;
  std::map<std::string, double> sums_;
  int64_t sums_count_ = 0;
  std::map<std::string, double> last_logged_;
};

// Precise BN (TEST.PRECISE_BN): before each evaluation and at the last iteration, the BN running
// statistics are recomputed over `num_iter` training micro-batches (see precise_bn.h).
class PreciseBNHook : public HookBase {
 public:
  PreciseBNHook(int64_t period, int64_t num_iter) : period_(period), num_iter_(num_iter) {}
  void after_step(Trainer& trainer) override;

 private:
  int64_t period_, num_iter_;
};

// A checkpoint every SOLVER.CHECKPOINT_PERIOD iterations, at the last and when stopping; at the
// last also model_final.safetensors (the weights alone).
class PeriodicCheckpointerHook : public HookBase {
 public:
  explicit PeriodicCheckpointerHook(int64_t period) : period_(period) {}
  void after_step(Trainer& trainer) override;

 private:
  int64_t period_;
};

// Evaluation on the test set every TEST.EVAL_PERIOD iterations and at the last (not when
// stopping); the scalars go to the metrics and to TrainResult::evaluation. A SIGINT/SIGTERM during
// an evaluation stops it within a batch: the iteration is checkpointed, OUTPUT_DIR/
// evaluation_pending names it, and the run stops; --resume evaluates it before training on.
class EvalHook : public HookBase {
 public:
  EvalHook(int64_t period, TestSet test_set) : period_(period), test_set_(std::move(test_set)) {}
  void before_train(Trainer& trainer) override;
  void after_step(Trainer& trainer) override;

 private:
  // Evaluates and records the scalars at `iteration`; false (and the run stopping) when a signal
  // interrupted it.
  bool evaluate(Trainer& trainer, int64_t iteration);

  int64_t period_;
  TestSet test_set_;
};

}  // namespace largedet::engine
