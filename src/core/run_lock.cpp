#include "largedet/core/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "largedet/core/error.h"

namespace largedet {

namespace {

std::string host_name() {
  char name[256] = {};
  return ::gethostname(name, sizeof name - 1) == 0 ? name : "?";
}

// The holder's record ("train, PID 123 on node7"), as the holder wrote it.
std::string read_record(int fd) {
  char buffer[512] = {};
  const ssize_t n = ::pread(fd, buffer, sizeof buffer - 1, 0);
  std::string record = n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
  while (!record.empty() && (record.back() == '\n' || record.back() == '\0')) record.pop_back();
  return record.empty() ? "a process that has not written its name yet" : record;
}

}  // namespace

RunLock::RunLock(const std::string& directory, const std::string& what)
    : path_(directory + "/.largedet.lock") {
  fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd_ < 0)
    throw Error(std::string("cannot open the run lock: ") + std::strerror(errno), path_,
                "check that the directory is writable");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    const std::string holder = error == EWOULDBLOCK ? read_record(fd_) : "";
    ::close(fd_);
    fd_ = -1;
    if (error != EWOULDBLOCK)
      throw Error(std::string("cannot lock the run directory: ") + std::strerror(error), path_,
                  "use a directory on a file system that supports flock");
    throw Error("another run is using this directory: " + holder, directory,
                "wait for it to end or stop it, or choose another --output");
  }
  const std::string record = what + ", PID " + std::to_string(::getpid()) + " on " + host_name();
  // The lock is held whatever happens here: a failed write only leaves a refused run without the
  // holder's name.
  if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, record.data(), record.size(), 0);
}

RunLock::~RunLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the last descriptor releases the flock
}

}  // namespace largedet
