#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

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

// OpenMP's threads sleep where other work keeps a core busy or the threads outnumber the cores,
// and spin (libgomp's default, "") on free cores; a policy the user set is kept.
TEST(Threads, OmpWaitPolicySleepsOnlyWhereCoresAreShared) {
  EXPECT_EQ(omp_wait_policy_for(0.0, 2, 2), "");
  EXPECT_EQ(omp_wait_policy_for(0.9, 2, 2), "");
  EXPECT_EQ(omp_wait_policy_for(1.0, 2, 2), "PASSIVE");
  EXPECT_EQ(omp_wait_policy_for(7.5, 64, 64), "PASSIVE");
  EXPECT_EQ(omp_wait_policy_for(0.0, 3, 2), "PASSIVE");  // 3 local workers on 2 cores
  EXPECT_EQ(omp_wait_policy_for(0.0, 32, 64), "");

  const char* before = std::getenv("OMP_WAIT_POLICY");
  const std::string saved = before ? before : "";
  ::setenv("OMP_WAIT_POLICY", "ACTIVE", 1);
  EXPECT_EQ(choose_omp_wait_policy(), "");
  EXPECT_STREQ(std::getenv("OMP_WAIT_POLICY"), "ACTIVE");
  if (before)
    ::setenv("OMP_WAIT_POLICY", saved.c_str(), 1);
  else
    ::unsetenv("OMP_WAIT_POLICY");
}

}  // namespace
}  // namespace largedet
