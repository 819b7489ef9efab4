// Mixed precision for a forward pass: inside the guard, ops run in `dtype` where autocast deems
// them safe, on one device type (CUDA: fp16 or bf16; CPU: bf16). The trainer, `bench model --amp`
// and the tests use this one guard. On exit it restores the state it found (as torch.autocast's
// __exit__ does), so that it nests inside a caller's own autocast region of another dtype.
#pragma once

#include <ATen/autocast_mode.h>

namespace largedet::ops {

class AutocastGuard {
 public:
  AutocastGuard(bool enabled, at::DeviceType device, at::ScalarType dtype)
      : enabled_(enabled),
        device_(device),
        was_enabled_(at::autocast::is_autocast_enabled(device)),
        was_dtype_(at::autocast::get_autocast_dtype(device)) {
    if (!enabled_) return;
    at::autocast::set_autocast_enabled(device_, true);
    at::autocast::set_autocast_dtype(device_, dtype);
    at::autocast::increment_nesting();
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
    at::autocast::set_autocast_enabled(device_, was_enabled_);
    at::autocast::set_autocast_dtype(device_, was_dtype_);
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool enabled_;
  at::DeviceType device_;
  bool was_enabled_;
  at::ScalarType was_dtype_;
};

}  // namespace largedet::ops
