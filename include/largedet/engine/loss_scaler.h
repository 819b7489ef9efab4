// Dynamic loss scaling for fp16 mixed precision (what torch.amp.GradScaler does): the loss is
// multiplied by `scale` before backward so that small gradients survive in fp16; gradients are
// divided by it before the optimizer step. A step whose gradients overflowed (Inf/NaN on any rank)
// is skipped and the scale halved; after `growth_interval` good steps in a row it doubles. The
// state goes into checkpoints so that a resumed run continues with the same scale.
#pragma once

#include <cstdint>
#include <string>

namespace largedet::engine {

struct LossScalerOptions {
  double init_scale = 65536.0;  // SOLVER.AMP.INIT_SCALE
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;  // SOLVER.AMP.GROWTH_INTERVAL
};

class LossScaler {
 public:
  // Disabled (bf16, fp32): scale() is 1 and update() always allows the step.
  explicit LossScaler(bool enabled, LossScalerOptions options = {});
  bool enabled() const { return enabled_; }
  double scale() const { return enabled_ ? scale_ : 1.0; }
  // Call once per optimizer step with whether any gradient overflowed on any rank. Returns whether
  // the optimizer should step, and adjusts the scale for the next step.
  bool update(bool found_inf);

  std::string state() const;
  // Throws largedet::Error when `state` was not written by state().
  void load_state(const std::string& state);

 private:
  bool enabled_;
  LossScalerOptions options_;
  double scale_;
  int64_t good_steps_ = 0;
};

}  // namespace largedet::engine
