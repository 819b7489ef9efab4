// Progress of a long loop, for the user watching it: on a terminal a bar with rate and ETA,
// redrawn in place (at most a few times a second); elsewhere (log files, CI) nothing, because the
// trainer's periodic log lines carry the same numbers and ETA.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace largedet::engine {

// "42s", "3:05", "1:02:03".
std::string format_duration(double seconds);

class Progress {
 public:
  // Counts from `start` (a resumed run's first iteration) to `total`. `enabled`: draw at all
  // (rank 0 only); `terminal`: whether stderr is a terminal (the default asks isatty).
  Progress(int64_t start, int64_t total, bool enabled);
  Progress(int64_t start, int64_t total, bool enabled, bool terminal);

  // `done` iterations are complete; `status` is a short tail such as "loss 0.532 lr 0.02".
  void update(int64_t done, const std::string& status);
  // Removes the bar so that a log line can be written on a clean line.
  void clear();
  // Seconds left at the rate since start; NaN before the first completed iteration.
  double eta_seconds(int64_t done) const;
  // The bar line as drawn for `done` (for tests): "[=====>    ]  50/100  50%  2.1 it/s  eta 0:24".
  std::string render(int64_t done, const std::string& status) const;

 private:
  int64_t start_, total_;
  bool draw_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point began_, last_draw_;
};

}  // namespace largedet::engine
