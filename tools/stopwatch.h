// Wall-clock seconds for the commands' timings (Torch-free: the front's commands use it too).
#pragma once

#include <chrono>

namespace largedet::tools {

using BenchClock = std::chrono::steady_clock;

inline double seconds_since(BenchClock::time_point start) {
  return std::chrono::duration<double>(BenchClock::now() - start).count();
}

}  // namespace largedet::tools
