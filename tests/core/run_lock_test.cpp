// One run per directory (docs/engine.md, "One run per directory"): a second holder is refused
// with the first one's name, the lock ends with its process however it ends, and the lock file
// cannot be redirected through a symbolic link.
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "common/error_text.h"
#include "largedet/core/error.h"
#include "largedet/core/run_lock.h"

namespace largedet {
namespace {

struct Dir {
  Dir() {
    char pattern[] = "/tmp/largedet_lock_XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~Dir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string path;
};

TEST(RunLock, ASecondHolderIsRefusedWithTheFirstOnesName) {
  Dir dir;
  {
    RunLock first(dir.path, "train");
    const std::string what = test::error_of([&] { RunLock second(dir.path, "sweep"); });
    EXPECT_NE(what.find("another run is using this directory"), std::string::npos) << what;
    EXPECT_NE(what.find("train, PID " + std::to_string(::getpid())), std::string::npos) << what;
    EXPECT_NE(what.find("choose another --output"), std::string::npos) << what;
  }
  RunLock again(dir.path, "train");  // released with its holder
  EXPECT_EQ(again.path(), dir.path + "/.largedet.lock");
}

TEST(RunLock, AKilledHoldersLockIsGone) {
  Dir dir;
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    RunLock held(dir.path, "train");
    (void)!::write(ready[1], "x", 1);
    ::pause();  // killed below, never released by a destructor
    ::_exit(0);
  }
  char byte = 0;
  ASSERT_EQ(::read(ready[0], &byte, 1), 1);
  const std::string what = test::error_of([&] { RunLock second(dir.path, "train"); });
  EXPECT_NE(what.find("PID " + std::to_string(child)), std::string::npos) << what;
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::close(ready[0]);
  ::close(ready[1]);
  RunLock after(dir.path, "train");
}

TEST(RunLock, ASymbolicLinkInPlaceOfTheLockIsRefused) {
  Dir dir;
  ASSERT_EQ(::symlink((dir.path + "/elsewhere").c_str(), (dir.path + "/.largedet.lock").c_str()),
            0);
  const std::string what = test::error_of([&] { RunLock lock(dir.path, "train"); });
  EXPECT_NE(what.find("cannot open the run lock"), std::string::npos) << what;
  EXPECT_THROW(RunLock(dir.path + "/missing", "train"), Error);
}

}  // namespace
}  // namespace largedet
