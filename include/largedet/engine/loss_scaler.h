// Dynamic loss scaling for fp16 mixed precision (what torch.amp.GradScaler does): the loss is
// multiplied by `scale` before backward so that small gradients survive in fp16; gradients are
// divided by it before the optimizer step. A step whose gradients overflowed (Inf/NaN on any rank)
// is skipped and the scale halved; after `growth_interval` good steps in a row it doubles. The
// state goes into checkpoints so that a resumed run continues with the same scale.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

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
  // Divides `grads` (defined, on one device) by scale() in place and returns a one-element float
  // tensor on their device, 1 where any of them holds an Inf or NaN, else 0, without a host read:
  // one fused pass (_amp_foreach_non_finite_check_and_unscale_), whatever the number of tensors.
  // Disabled: the gradients are untouched and the flag is 0.
  at::Tensor unscale_(const std::vector<at::Tensor>& grads) const;
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
