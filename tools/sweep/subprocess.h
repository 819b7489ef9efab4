// The sweep's child processes: one training run at a time, its output appended to a log file
// (and echoed when asked), SIGINT/SIGTERM forwarded to it exactly once per signal received.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace largedet::tools::sweep {

// While alive, SIGINT and SIGTERM no longer kill this process: they are forwarded to the running
// child's process group (train then saves a checkpoint and exits; a second signal kills it) and
// stop_requested() turns true. The previous handlers come back on destruction.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  static bool stop_requested();
};

struct ChildOptions {
  std::vector<std::string> argv;  // argv[0] is the executable's path
  std::string log_path;           // appended to
  bool echo = false;              // also copy the output to this process's stdout
  // Called with each chunk of output as it arrives (the sweep's one-line progress).
  std::function<void(const std::string&)> on_output;
};

// Runs the child in a process group of its own (so that a terminal's Ctrl-C reaches it once,
// through StopSignals) that gets SIGTERM if this process dies; its stdout and stderr go to the
// log. Returns its exit code, or 128 + the signal that killed it. Throws largedet::Error when the
// log cannot be opened or the process cannot be started.
int run_child(const ChildOptions& options);

}  // namespace largedet::tools::sweep
