// See ../README.md (gloo_shim): declarations only, enough for ProcessGroupGloo.hpp.
#pragma once

#include <chrono>

namespace gloo {
class Context {
 public:
  // Named by ProcessGroupGloo::setTimeout (inline); defined in libtorch_cpu.
  void setTimeout(std::chrono::milliseconds timeout);
};
}  // namespace gloo
