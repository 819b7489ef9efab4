// CollectiveWatchdog's decision, on fake works and a fake clock: what NCCL's non-blocking waits
// rely on to turn a failed or hung collective into our error (docs/distributed.md, "Faults").
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "largedet/distributed/collective_watchdog.h"

namespace dist = largedet::distributed;
using namespace std::chrono_literals;
using Clock = dist::CollectiveWatchdog::Clock;

namespace {

struct FakeWork : dist::WatchedWork {
  std::atomic<bool> done{false};
  std::optional<std::string> error;
  std::atomic<int> polls{0};
  bool completed() override {
    ++polls;
    return done;
  }
  std::optional<std::string> failure() override { return error; }
};

std::shared_ptr<FakeWork> work() { return std::make_shared<FakeWork>(); }

TEST(CollectiveWatchdog, FinishedWorksAreForgottenAndRunningOnesWithinTheTimeoutPass) {
  dist::CollectiveWatchdog watchdog(20s);
  const auto t0 = Clock::now();
  auto a = work(), b = work(), c = work();
  watchdog.watch("allreduce", a, t0);
  watchdog.watch("allgather", b, t0 + 1s);
  watchdog.watch("allreduce", c, t0 + 2s);
  EXPECT_FALSE(watchdog.check(t0 + 10s));
  EXPECT_EQ(watchdog.pending(), 3u);
  a->done = true;
  c->done = true;  // behind a running one: kept until b finishes
  EXPECT_FALSE(watchdog.check(t0 + 15s));
  EXPECT_EQ(watchdog.pending(), 2u);
  b->done = true;
  EXPECT_FALSE(watchdog.check(t0 + 30s));  // done before the check: no timeout
  EXPECT_EQ(watchdog.pending(), 0u);
}

TEST(CollectiveWatchdog, AFailedWorkIsReportedWithItsReasonOnce) {
  dist::CollectiveWatchdog watchdog(20s);
  const auto t0 = Clock::now();
  auto a = work(), b = work();
  watchdog.watch("allreduce", a, t0);
  watchdog.watch("allgather", b, t0);
  b->error = "NCCL error: remote process exited";
  b->done = true;
  auto verdict = watchdog.check(t0 + 1s);
  ASSERT_TRUE(verdict);
  EXPECT_EQ(verdict->op, "allgather");
  EXPECT_EQ(verdict->reason, "NCCL error: remote process exited");
  EXPECT_FALSE(verdict->timed_out);
  EXPECT_FALSE(watchdog.check(t0 + 60s));  // one verdict: the process is ending
}

TEST(CollectiveWatchdog, AWorkPastTheTimeoutIsReportedAsHung) {
  dist::CollectiveWatchdog watchdog(20s);
  const auto t0 = Clock::now();
  auto a = work(), b = work();
  watchdog.watch("allreduce", a, t0);
  watchdog.watch("broadcast", b, t0 + 5s);
  EXPECT_FALSE(watchdog.check(t0 + 20s));  // at the timeout, not past it
  auto verdict = watchdog.check(t0 + 21s);
  ASSERT_TRUE(verdict);
  EXPECT_EQ(verdict->op, "allreduce");  // the oldest
  EXPECT_TRUE(verdict->timed_out);
  EXPECT_NE(verdict->reason.find("not finished after 21 s"), std::string::npos) << verdict->reason;
  EXPECT_NE(verdict->reason.find("20 s"), std::string::npos) << verdict->reason;
}

TEST(CollectiveWatchdog, AFailureOutranksAnOlderHungWork) {
  // The hung one is most likely waiting for the rank whose failure the other reports.
  dist::CollectiveWatchdog watchdog(20s);
  const auto t0 = Clock::now();
  auto hung = work(), failed = work();
  watchdog.watch("allreduce", hung, t0);
  watchdog.watch("allgather", failed, t0 + 1s);
  failed->error = "connection reset";
  failed->done = true;
  auto verdict = watchdog.check(t0 + 30s);
  ASSERT_TRUE(verdict);
  EXPECT_EQ(verdict->op, "allgather");
  EXPECT_FALSE(verdict->timed_out);
}

TEST(CollectiveWatchdog, ItsThreadReportsAFailureAndStops) {
  dist::CollectiveWatchdog watchdog(20s);
  auto a = work();
  watchdog.watch("allreduce", a, Clock::now());
  std::promise<dist::WatchdogVerdict> reported;
  auto future = reported.get_future();
  watchdog.start(10ms, [&](const dist::WatchdogVerdict& v) { reported.set_value(v); });
  std::this_thread::sleep_for(50ms);
  EXPECT_GT(a->polls.load(), 0);
  a->error = "NCCL communicator was aborted";
  a->done = true;
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(future.get().reason, "NCCL communicator was aborted");
  watchdog.stop();
}

TEST(CollectiveWatchdog, ItsThreadTimesOutAHungWork) {
  dist::CollectiveWatchdog watchdog(100ms);
  watchdog.watch("barrier", work(), Clock::now());
  std::promise<dist::WatchdogVerdict> reported;
  auto future = reported.get_future();
  const auto t0 = Clock::now();
  watchdog.start(10ms, [&](const dist::WatchdogVerdict& v) { reported.set_value(v); });
  ASSERT_EQ(future.wait_for(5s), std::future_status::ready);
  EXPECT_GE(Clock::now() - t0, 100ms);
  EXPECT_TRUE(future.get().timed_out);
}

TEST(CollectiveWatchdog, StopsPromptlyWithoutAVerdict) {
  dist::CollectiveWatchdog watchdog(20s);
  watchdog.watch("allreduce", work(), Clock::now());
  watchdog.start(10s, [](const dist::WatchdogVerdict&) { ADD_FAILURE() << "no verdict expected"; });
  const auto t0 = Clock::now();
  watchdog.stop();
  EXPECT_LT(Clock::now() - t0, 2s);
}

}  // namespace
