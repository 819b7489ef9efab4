// Learning rate per iteration: lr(it) = base_lr * warmup(it) * decay(it).
//   warmup: linear (factor -> 1), exponential (factor^(1 - it / iters)) or constant, over
//           warmup_iters, as detectron2's WarmupParamScheduler
//   decay:  multistep (gamma^#steps passed), cosine (to end_factor at max_iter) or poly
// base_lr is the LR the run uses: batch scaling (the scaling rule, REFERENCE_WORLD_SIZE,
// SCALE_SCHEDULE) happened before, in apply_batch_scaling (batch_scaling.h).
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/serialize/archive.h>

#include <cstdint>
#include <string>
#include <vector>

namespace largedet {
class Config;
}

namespace largedet::solver {

enum class ScalingRule { kLinear, kSqrt, kNone };
enum class WarmupMethod { kLinear, kExponential, kConstant };
enum class DecayMethod { kMultiStep, kCosine, kPoly };

struct LRScheduleOptions {
  double base_lr = 0.02;
  WarmupMethod warmup_method = WarmupMethod::kLinear;
  int64_t warmup_iters = 1000;
  double warmup_factor = 0.001;
  DecayMethod decay = DecayMethod::kMultiStep;
  std::vector<int64_t> steps{60000, 80000};
  double gamma = 0.1;
  int64_t max_iter = 90000;
  double poly_power = 0.9;
  double cosine_end_factor = 0.0;
};

class LRSchedule {
 public:
  explicit LRSchedule(LRScheduleOptions options);
  // From SOLVER.* keys of a config that went through apply_batch_scaling; errors name the key.
  static LRSchedule from_config(const Config& config);

  const LRScheduleOptions& options() const { return options_; }
  double warmup(int64_t iteration) const;
  double decay(int64_t iteration) const;
  double factor(int64_t iteration) const { return warmup(iteration) * decay(iteration); }
  double lr(int64_t iteration) const { return options_.base_lr * factor(iteration); }

 private:
  LRScheduleOptions options_;
};

// Drives an optimizer's group learning rates: group lr = its LR at construction (base_lr times
// the group's factor) * schedule.factor(iteration). Saves and loads the iteration.
class LRScheduler {
 public:
  LRScheduler(torch::optim::Optimizer& optimizer, LRSchedule schedule);
  void set_iteration(int64_t iteration);
  int64_t iteration() const { return iteration_; }
  const LRSchedule& schedule() const { return schedule_; }
  void save(torch::serialize::OutputArchive& archive) const;
  void load(torch::serialize::InputArchive& archive);

 private:
  torch::optim::Optimizer& optimizer_;
  LRSchedule schedule_;
  std::vector<double> group_lrs_;
  int64_t iteration_ = 0;
};

ScalingRule parse_scaling_rule(const std::string& name, const std::string& where);
WarmupMethod parse_warmup_method(const std::string& name, const std::string& where);
DecayMethod parse_decay_method(const std::string& name, const std::string& where);

}  // namespace largedet::solver
