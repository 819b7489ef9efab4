#include "largedet/solver/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "largedet/core/config.h"
#include "largedet/core/error.h"

namespace largedet::solver {
namespace {

template <typename Enum>
Enum parse_choice(const std::string& name, const std::vector<std::pair<std::string, Enum>>& choices,
                  const std::string& where) {
  std::vector<std::string> names;
  for (const auto& [choice, value] : choices) {
    if (choice == name) return value;
    names.push_back(choice);
  }
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  std::string close = closest_match(name, names);
  throw Error("unknown value '" + name + "'", where,
              "use one of: " + list + (close.empty() ? "" : "; did you mean '" + close + "'?"));
}

}  // namespace

ScalingRule parse_scaling_rule(const std::string& name, const std::string& where) {
  return parse_choice<ScalingRule>(name,
                                   {{"linear", ScalingRule::kLinear},
                                    {"sqrt", ScalingRule::kSqrt},
                                    {"none", ScalingRule::kNone}},
                                   where);
}

WarmupMethod parse_warmup_method(const std::string& name, const std::string& where) {
  return parse_choice<WarmupMethod>(name,
                                    {{"linear", WarmupMethod::kLinear},
                                     {"exponential", WarmupMethod::kExponential},
                                     {"constant", WarmupMethod::kConstant}},
                                    where);
}

DecayMethod parse_decay_method(const std::string& name, const std::string& where) {
  return parse_choice<DecayMethod>(name,
                                   {{"WarmupMultiStepLR", DecayMethod::kMultiStep},
                                    {"WarmupCosineLR", DecayMethod::kCosine},
                                    {"WarmupPolyLR", DecayMethod::kPoly}},
                                   where);
}

LRSchedule::LRSchedule(LRScheduleOptions options) : options_(std::move(options)) {
  auto& o = options_;
  LARGEDET_CHECK(o.warmup_iters >= 0, "LR schedule: warmup_iters must be >= 0");
  LARGEDET_CHECK(o.warmup_factor > 0 && o.warmup_factor <= 1,
                 "LR schedule: warmup_factor must be in (0, 1], got ", o.warmup_factor);
  LARGEDET_CHECK(o.max_iter > 0, "LR schedule: max_iter must be positive");
  LARGEDET_CHECK(std::is_sorted(o.steps.begin(), o.steps.end()),
                 "LR schedule: steps must be increasing");
}

double LRSchedule::warmup(int64_t iteration) const {
  const auto& o = options_;
  if (iteration >= o.warmup_iters) return 1.0;
  const double alpha = static_cast<double>(iteration) / o.warmup_iters;
  switch (o.warmup_method) {
    case WarmupMethod::kLinear:
      return o.warmup_factor * (1 - alpha) + alpha;
    case WarmupMethod::kExponential:
      return std::pow(o.warmup_factor, 1 - alpha);
    case WarmupMethod::kConstant:
      return o.warmup_factor;
  }
  return 1.0;
}

double LRSchedule::decay(int64_t iteration) const {
  const auto& o = options_;
  switch (o.decay) {
    case DecayMethod::kMultiStep: {
      auto passed = std::upper_bound(o.steps.begin(), o.steps.end(), iteration) - o.steps.begin();
      return std::pow(o.gamma, static_cast<double>(passed));
    }
    case DecayMethod::kCosine: {
      double progress = std::min(1.0, static_cast<double>(iteration) / o.max_iter);
      return o.cosine_end_factor +
             (1 - o.cosine_end_factor) * 0.5 * (1 + std::cos(M_PI * progress));
    }
    case DecayMethod::kPoly: {
      double progress = std::min(1.0, static_cast<double>(iteration) / o.max_iter);
      return std::pow(1 - progress, o.poly_power);
    }
  }
  return 1.0;
}

LRSchedule LRSchedule::from_config(const Config& config) {
  LRScheduleOptions o;
  LARGEDET_CHECK(config.get<int64_t>("SOLVER.REFERENCE_BATCH") == 0 &&
                     !config.get<bool>("SOLVER.SCALE_SCHEDULE"),
                 "LRSchedule::from_config: apply_batch_scaling first (SOLVER.REFERENCE_BATCH is ",
                 config.get<int64_t>("SOLVER.REFERENCE_BATCH"), ")");
  o.base_lr = config.get<double>("SOLVER.BASE_LR");
  o.warmup_method =
      parse_warmup_method(config.get<std::string>("SOLVER.WARMUP_METHOD"),
                          "SOLVER.WARMUP_METHOD (" + config.source("SOLVER.WARMUP_METHOD") + ")");
  o.warmup_iters = config.get<int64_t>("SOLVER.WARMUP_ITERS");
  o.warmup_factor = config.get<double>("SOLVER.WARMUP_FACTOR");
  o.decay = parse_decay_method(
      config.get<std::string>("SOLVER.LR_SCHEDULER_NAME"),
      "SOLVER.LR_SCHEDULER_NAME (" + config.source("SOLVER.LR_SCHEDULER_NAME") + ")");
  o.steps = config.get<std::vector<int64_t>>("SOLVER.STEPS");
  o.gamma = config.get<double>("SOLVER.GAMMA");
  o.max_iter = config.get<int64_t>("SOLVER.MAX_ITER");
  o.poly_power = config.get<double>("SOLVER.POLY_POWER");
  o.cosine_end_factor = o.base_lr > 0 ? config.get<double>("SOLVER.BASE_LR_END") / o.base_lr : 0.0;
  return LRSchedule(o);
}

LRScheduler::LRScheduler(torch::optim::Optimizer& optimizer, LRSchedule schedule)
    : optimizer_(optimizer), schedule_(std::move(schedule)) {
  for (const auto& group : optimizer_.param_groups())
    group_lrs_.push_back(group.options().get_lr());
  set_iteration(0);
}

void LRScheduler::set_iteration(int64_t iteration) {
  iteration_ = iteration;
  const double factor = schedule_.factor(iteration);
  auto& groups = optimizer_.param_groups();
  for (size_t i = 0; i < groups.size(); ++i) groups[i].options().set_lr(group_lrs_[i] * factor);
}

void LRScheduler::save(torch::serialize::OutputArchive& archive) const {
  archive.write("iteration", c10::IValue(iteration_));
  archive.write("group_lrs", c10::IValue(c10::List<double>(group_lrs_)));
}

void LRScheduler::load(torch::serialize::InputArchive& archive) {
  c10::IValue iteration, group_lrs;
  archive.read("iteration", iteration);
  archive.read("group_lrs", group_lrs);
  auto lrs = group_lrs.toDoubleList().vec();
  LARGEDET_CHECK(lrs.size() == group_lrs_.size(), "LR scheduler state has ", lrs.size(),
                 " parameter groups but the optimizer has ", group_lrs_.size());
  group_lrs_ = lrs;
  set_iteration(iteration.toInt());
}

}  // namespace largedet::solver
