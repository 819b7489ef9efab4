#include "largedet/solver/batch_scaling.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/solver/lr_schedule.h"

namespace largedet::solver {
namespace {

std::string number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

int64_t divided(int64_t iterations, double ratio) {
  return static_cast<int64_t>(std::llround(static_cast<double>(iterations) / ratio));
}

// The one rule for every iteration count, whichever key asked for the scaling.
void scale_iterations(Config& config, double ratio, const std::string& why,
                      std::vector<std::string>* notes) {
  auto scale = [&](const std::string& key, int64_t minimum) {
    const auto before = config.get<int64_t>(key);
    const auto after = std::max(std::min(before, minimum), divided(before, ratio));
    if (after == before) return after;
    config.set(key, std::to_string(after), why);
    notes->push_back(key + " " + std::to_string(before) + " -> " + std::to_string(after));
    return after;
  };
  const auto max_iter = scale("SOLVER.MAX_ITER", 1);
  auto steps = config.get<std::vector<int64_t>>("SOLVER.STEPS");
  if (!steps.empty()) {
    std::string text;
    for (auto& step : steps)
      text += (text.empty() ? "" : ", ") + std::to_string(divided(step, ratio));
    config.set("SOLVER.STEPS", "[" + text + "]", why);
    notes->push_back("SOLVER.STEPS -> [" + text + "]");
  }
  scale("SOLVER.WARMUP_ITERS", std::min(kMinScaledWarmupIters, max_iter));
  for (const char* key :
       {"SOLVER.CHECKPOINT_PERIOD", "TEST.EVAL_PERIOD", "SOLVER.LAMB.DECAY_PERIOD"})
    if (config.get<int64_t>(key) > 0) scale(key, 1);
}

}  // namespace

std::vector<std::string> apply_batch_scaling(Config& config, int world_size) {
  std::vector<std::string> notes;
  LARGEDET_CHECK(world_size > 0, "apply_batch_scaling: world size ", world_size);
  if (config.is_null("SOLVER.WEIGHT_DECAY_BIAS"))
    config.set("SOLVER.WEIGHT_DECAY_BIAS", number(config.get<double>("SOLVER.WEIGHT_DECAY")),
               "SOLVER.WEIGHT_DECAY (WEIGHT_DECAY_BIAS unset)");
  const auto reference_batch = config.get<int64_t>("SOLVER.REFERENCE_BATCH");

  const auto reference_world = config.get<int64_t>("SOLVER.REFERENCE_WORLD_SIZE");
  if (reference_world > 0 && reference_world != world_size) {
    const auto batch = config.get<int64_t>("SOLVER.IMS_PER_BATCH");
    if (batch % reference_world != 0)
      throw Error("SOLVER.IMS_PER_BATCH " + std::to_string(batch) +
                      " does not split over SOLVER.REFERENCE_WORLD_SIZE " +
                      std::to_string(reference_world) + " ranks",
                  config.source("SOLVER.REFERENCE_WORLD_SIZE"),
                  "use a batch that is a multiple of the reference world size");
    const double ratio = static_cast<double>(world_size) / reference_world;
    const std::string why = "SOLVER.REFERENCE_WORLD_SIZE " + std::to_string(reference_world) +
                            " on " + std::to_string(world_size) + " ranks";
    const auto new_batch = static_cast<int64_t>(std::llround(batch * ratio));
    config.set("SOLVER.IMS_PER_BATCH", std::to_string(new_batch), why);
    notes.push_back(why + ": SOLVER.IMS_PER_BATCH " + std::to_string(batch) + " -> " +
                    std::to_string(new_batch));
    if (reference_batch == 0) {
      const double lr = config.get<double>("SOLVER.BASE_LR");
      config.set("SOLVER.BASE_LR", number(lr * ratio), why);
      config.set("SOLVER.BASE_LR_END", number(config.get<double>("SOLVER.BASE_LR_END") * ratio),
                 why);
      notes.push_back(why + ": SOLVER.BASE_LR " + number(lr) + " -> " + number(lr * ratio));
    }
    scale_iterations(config, ratio, why, &notes);
    config.set("SOLVER.REFERENCE_WORLD_SIZE", std::to_string(world_size), "applied");
  }

  const bool scale_schedule = config.get<bool>("SOLVER.SCALE_SCHEDULE");
  // Decay is kept per run, and only a scaled schedule (which needs REFERENCE_BATCH) says how many
  // iterations the run has.
  if (config.get<bool>("SOLVER.SCALE_WEIGHT_DECAY") && !scale_schedule)
    throw Error(
        "SOLVER.SCALE_WEIGHT_DECAY needs SOLVER.SCALE_SCHEDULE (and REFERENCE_BATCH): the "
        "decay is kept per run, and only a scaled schedule says how many iterations the "
        "run has",
        config.source("SOLVER.SCALE_WEIGHT_DECAY"),
        "set SOLVER.SCALE_SCHEDULE true and SOLVER.REFERENCE_BATCH");
  if (reference_batch == 0) {
    if (scale_schedule)
      throw Error(
          "SOLVER.SCALE_SCHEDULE needs SOLVER.REFERENCE_BATCH, the batch the schedule "
          "was written for",
          config.source("SOLVER.SCALE_SCHEDULE"), "set SOLVER.REFERENCE_BATCH, e.g. 16");
    notes.push_back("lr " + number(config.get<double>("SOLVER.BASE_LR")) +
                    ": SOLVER.BASE_LR, meant for SOLVER.IMS_PER_BATCH " +
                    std::to_string(config.get<int64_t>("SOLVER.IMS_PER_BATCH")));
    return notes;
  }
  const auto batch = config.get<int64_t>("SOLVER.IMS_PER_BATCH");
  const double ratio = static_cast<double>(batch) / reference_batch;
  const auto rule_name = config.get<std::string>("SOLVER.SCALING_RULE");
  const auto rule = parse_scaling_rule(rule_name, config.source("SOLVER.SCALING_RULE"));
  const double factor = rule == ScalingRule::kLinear ? ratio
                        : rule == ScalingRule::kSqrt ? std::sqrt(ratio)
                                                     : 1.0;
  const double lr = config.get<double>("SOLVER.BASE_LR");
  const std::string why = "SOLVER.SCALING_RULE " + rule_name + " from SOLVER.REFERENCE_BATCH " +
                          std::to_string(reference_batch) + " to SOLVER.IMS_PER_BATCH " +
                          std::to_string(batch);
  config.set("SOLVER.BASE_LR", number(lr * factor), why);
  config.set("SOLVER.BASE_LR_END", number(config.get<double>("SOLVER.BASE_LR_END") * factor), why);
  notes.push_back("lr " + number(lr * factor) + " = SOLVER.BASE_LR " + number(lr) + " x " +
                  number(factor) + " (" + why + ")");
  if (config.get<bool>("SOLVER.SCALE_WEIGHT_DECAY")) {
    // Each iteration decays the weights by about LR x decay; the run has 1/ratio the iterations
    // at factor x the LR, so the decay over it stays the reference's at ratio / factor the decay.
    const double decay_factor = ratio / factor;
    const std::string decay_why = "SOLVER.SCALE_WEIGHT_DECAY (x " + number(decay_factor) + ")";
    for (const char* key :
         {"SOLVER.WEIGHT_DECAY", "SOLVER.WEIGHT_DECAY_BIAS", "SOLVER.WEIGHT_DECAY_NORM"}) {
      const double before = config.get<double>(key);
      if (before == 0 || decay_factor == 1) continue;
      config.set(key, number(before * decay_factor), decay_why);
      notes.push_back(std::string(key) + " " + number(before) + " -> " +
                      number(before * decay_factor) + " (" + decay_why + ")");
    }
    config.set("SOLVER.SCALE_WEIGHT_DECAY", "false", "applied");
  }
  if (scale_schedule) {
    scale_iterations(config, ratio, "SOLVER.SCALE_SCHEDULE (batch " + number(ratio) + "x)", &notes);
    config.set("SOLVER.SCALE_SCHEDULE", "false", "applied");
  }
  config.set("SOLVER.REFERENCE_BATCH", "0", "applied: SOLVER.BASE_LR is now the LR used");
  return notes;
}

}  // namespace largedet::solver
