// Timing helpers shared by the `largedet bench` commands.
#pragma once

#include <torch/cuda.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "stopwatch.h"

namespace largedet::tools {

// Median wall time of fn() in milliseconds over `iterations` calls, after one untimed warm-up
// call; with `cuda`, each call is followed by a device synchronisation so GPU work is counted.
inline double median_ms(int iterations, bool cuda, const std::function<void()>& fn) {
  fn();
  if (cuda) torch::cuda::synchronize();
  std::vector<double> times;
  for (int i = 0; i < iterations; ++i) {
    const auto start = BenchClock::now();
    fn();
    if (cuda) torch::cuda::synchronize();
    times.push_back(seconds_since(start) * 1e3);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace largedet::tools
