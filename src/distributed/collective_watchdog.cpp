#include "largedet/distributed/collective_watchdog.h"

#include <sstream>
#include <utility>

namespace largedet::distributed {

CollectiveWatchdog::CollectiveWatchdog(std::chrono::milliseconds timeout) : timeout_(timeout) {}

CollectiveWatchdog::~CollectiveWatchdog() { stop(); }

void CollectiveWatchdog::watch(std::string op, std::shared_ptr<WatchedWork> work,
                               Clock::time_point issued) {
  std::lock_guard<std::mutex> lock(mutex_);
  pending_.push_back({std::move(op), std::move(work), issued});
}

std::optional<WatchdogVerdict> CollectiveWatchdog::check(Clock::time_point now) {
  // The works are polled outside the lock: watch() is on the training thread's path.
  std::deque<Entry> snapshot;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (reported_) return std::nullopt;
    snapshot = pending_;
  }
  std::optional<WatchdogVerdict> failed, overdue;
  size_t done_prefix = 0;  // collectives finish in issue order on one stream, mostly
  bool prefix = true;
  for (const auto& e : snapshot) {
    if (e.work->completed()) {
      if (auto why = e.work->failure()) {
        failed = WatchdogVerdict{e.op, *why, false};
        break;
      }
      if (prefix) ++done_prefix;
      continue;
    }
    prefix = false;
    if (!overdue && now - e.issued > timeout_) {
      std::ostringstream why;
      why << "not finished after "
          << std::chrono::duration_cast<std::chrono::milliseconds>(now - e.issued).count() / 1000.0
          << " s (DISTRIBUTED.TIMEOUT_SECONDS: "
          << std::chrono::duration_cast<std::chrono::milliseconds>(timeout_).count() / 1000.0
          << " s)";
      overdue = WatchdogVerdict{e.op, why.str(), true};
    }
  }
  std::lock_guard<std::mutex> lock(mutex_);
  // Works watched since the snapshot sit behind it: drop only the finished prefix.
  pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(done_prefix));
  auto verdict = failed ? failed : overdue;
  if (verdict) reported_ = true;
  return verdict;
}

size_t CollectiveWatchdog::pending() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return pending_.size();
}

void CollectiveWatchdog::start(std::chrono::milliseconds period,
                               std::function<void(const WatchdogVerdict&)> on_verdict) {
  thread_ = std::thread([this, period, on_verdict = std::move(on_verdict)] {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stopping_) {
      wake_.wait_for(lock, period, [this] { return stopping_; });
      if (stopping_) break;
      lock.unlock();
      auto verdict = check(Clock::now());
      if (verdict) {
        on_verdict(*verdict);
        return;
      }
      lock.lock();
    }
  });
}

void CollectiveWatchdog::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace largedet::distributed
