#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <vector>

#include "largedet/core/error.h"
#include "largedet/core/logging.h"
#include "largedet/core/threads.h"

namespace largedet {
namespace {

TEST(Logging, LinesCarryLevelRankAndTime) {
  log::set_rank(3);
  testing::internal::CaptureStderr();
  log::info() << "hello " << 42;
  log::debug() << "hidden";
  std::string out = testing::internal::GetCapturedStderr();
  log::set_rank(-1);
  EXPECT_NE(out.find("rank 3 INFO] hello 42"), std::string::npos) << out;
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_EQ(out[0], '[');
  EXPECT_EQ(out[3], ':');
}

TEST(Logging, ParsesLevelsAndRejectsUnknown) {
  EXPECT_EQ(log::parse_level("WARNING"), log::Level::kWarning);
  EXPECT_EQ(log::parse_level("debug"), log::Level::kDebug);
  EXPECT_THROW(log::parse_level("loud"), Error);
}

TEST(Threads, UsesUsableCoresUnlessTold) {
  EXPECT_GE(usable_cores(), 1);
  EXPECT_EQ(configure_threads(1), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  EXPECT_EQ(configure_threads(0), usable_cores());
  EXPECT_EQ(configure_threads(0, 1000), 1);
}

// at::parallel_for is a header template that runs serially unless our own sources are compiled
// with OpenMP: the build must give them (and this test, through the same targets) -fopenmp.
TEST(Threads, ParallelForRunsOnTheIntraOpThreads) {
  const int threads = at::get_num_threads();
  configure_threads(2);
  std::vector<int> ran_on(2, -1);
  at::parallel_for(0, 2, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) ran_on[i] = at::get_thread_num();
  });
  configure_threads(threads);
  EXPECT_EQ(ran_on, (std::vector<int>{0, 1}));
}

}  // namespace
}  // namespace largedet
