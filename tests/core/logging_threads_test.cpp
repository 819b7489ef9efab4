#include <gtest/gtest.h>

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

TEST(Threads, UsableCoresIsAtLeastOne) { EXPECT_GE(usable_cores(), 1); }

}  // namespace
}  // namespace largedet
