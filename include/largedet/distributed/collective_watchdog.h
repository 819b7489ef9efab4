// Ends a job whose collective failed or hung, with our error, without making any collective wait
// on the host (docs/distributed.md, "Faults"). Under NCCL, Work::wait() only orders the streams;
// this watchdog polls the collectives issued but not yet seen to finish, and reports the first
// that failed or ran past the timeout. The decision (check) is separate from its thread, so that
// tests drive it with fake works and a fake clock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace largedet::distributed {

// What the watchdog asks of a collective in flight (c10d's Work, or a test's fake).
class WatchedWork {
 public:
  virtual ~WatchedWork() = default;
  // Done, successfully or not.
  virtual bool completed() = 0;
  // Why it failed, once it has; nothing while it runs or when it succeeded.
  virtual std::optional<std::string> failure() = 0;
};

struct WatchdogVerdict {
  std::string op;      // "allreduce"
  std::string reason;  // the backend's error, or "not finished after 20 s"
  bool timed_out = false;
};

class CollectiveWatchdog {
 public:
  using Clock = std::chrono::steady_clock;

  explicit CollectiveWatchdog(std::chrono::milliseconds timeout);
  ~CollectiveWatchdog();  // stops the thread, if started
  CollectiveWatchdog(const CollectiveWatchdog&) = delete;
  CollectiveWatchdog& operator=(const CollectiveWatchdog&) = delete;

  void watch(std::string op, std::shared_ptr<WatchedWork> work, Clock::time_point issued);
  // Forgets the works that finished well; returns the first (in issue order) that failed, or else
  // the first still running past the timeout. A verdict is given once: later calls return none.
  std::optional<WatchdogVerdict> check(Clock::time_point now);
  size_t pending() const;

  // Runs check() every `period` on a thread of its own; on a verdict calls on_verdict once (which
  // ends the process: the job cannot continue) and stops.
  void start(std::chrono::milliseconds period,
             std::function<void(const WatchdogVerdict&)> on_verdict);
  void stop();

 private:
  struct Entry {
    std::string op;
    std::shared_ptr<WatchedWork> work;
    Clock::time_point issued;
  };
  std::chrono::milliseconds timeout_;
  mutable std::mutex mutex_;
  std::deque<Entry> pending_;
  bool reported_ = false;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace largedet::distributed
