// One run per directory (docs/engine.md, "One run per directory"): an advisory lock on
// DIR/.largedet.lock, held by the process for as long as the RunLock lives and released by the
// kernel when the process dies however it dies, so that no stale lock outlives its run. A second
// process that asks for the same directory is refused with the holder's PID and host. Advisory:
// it protects against other LargeDet runs, and flock may not span hosts on some network file
// systems (NFSv3 without lockd), where the holder's record still names it.
#pragma once

#include <string>

namespace largedet {

class RunLock {
 public:
  // Takes the lock on `directory` (which must exist) for `what` ("train", "sweep"), or throws
  // largedet::Error naming the holder's PID and host and saying what to do.
  RunLock(const std::string& directory, const std::string& what);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace largedet
