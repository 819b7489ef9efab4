#include "largedet/engine/loss_scaler.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <sstream>

#include "largedet/core/error.h"

namespace largedet::engine {

LossScaler::LossScaler(bool enabled, LossScalerOptions options)
    : enabled_(enabled), options_(options), scale_(options.init_scale) {
  LARGEDET_CHECK(
      options.init_scale > 0 && options.growth_factor > 1 && options.backoff_factor > 0 &&
          options.backoff_factor < 1 && options.growth_interval > 0,
      "loss scaler: SOLVER.AMP.INIT_SCALE must be > 0 and SOLVER.AMP.GROWTH_INTERVAL >= 1");
}

at::Tensor LossScaler::unscale_(const std::vector<at::Tensor>& grads) const {
  const auto options =
      grads.empty() ? at::TensorOptions(at::kFloat) : grads.front().options().dtype(at::kFloat);
  at::Tensor found_inf = at::zeros({1}, options);
  if (!enabled_ || grads.empty()) return found_inf;
  at::_amp_foreach_non_finite_check_and_unscale_(grads, found_inf,
                                                 at::full({1}, 1.0 / scale_, options));
  return found_inf;
}

bool LossScaler::update(bool found_inf) {
  if (!enabled_) return true;
  if (found_inf) {
    scale_ *= options_.backoff_factor;
    good_steps_ = 0;
    return false;
  }
  if (++good_steps_ == options_.growth_interval) {
    scale_ *= options_.growth_factor;
    good_steps_ = 0;
  }
  return true;
}

std::string LossScaler::state() const {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%a %lld", scale_, static_cast<long long>(good_steps_));
  return buffer;
}

void LossScaler::load_state(const std::string& state) {
  double scale = 0;
  long long good = -1;
  LARGEDET_CHECK(
      std::sscanf(state.c_str(), "%la %lld", &scale, &good) == 2 && scale > 0 && good >= 0,
      "loss scaler: malformed state \"", state, "\" in the checkpoint");
  scale_ = scale;
  good_steps_ = good;
}

}  // namespace largedet::engine
