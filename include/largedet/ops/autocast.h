// Mixed precision for a forward pass: inside the guard, ops run in `dtype` where autocast deems
// them safe, on one device type (CUDA: fp16 or bf16; CPU: bf16). The trainer, `bench model --amp`
// and the tests use this one guard.
#pragma once

#include <ATen/autocast_mode.h>

namespace largedet::ops {

class AutocastGuard {
 public:
  AutocastGuard(bool enabled, at::DeviceType device, at::ScalarType dtype)
      : enabled_(enabled), device_(device) {
    if (!enabled_) return;
    at::autocast::set_autocast_enabled(device_, true);
    at::autocast::set_autocast_dtype(device_, dtype);
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(device_, false);
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool enabled_;
  at::DeviceType device_;
};

}  // namespace largedet::ops
