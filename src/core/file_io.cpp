#include "largedet/core/file_io.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "largedet/core/error.h"

namespace largedet {
namespace {
std::string directory_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

constexpr const char* kTemporaryInfix = ".tmp.";

// The writer's pid of a write_file_atomic temporary, or 0 if `name` is not one.
pid_t temporary_writer(const std::string& name) {
  const size_t at = name.rfind(kTemporaryInfix);
  if (at == std::string::npos || at == 0) return 0;
  const std::string digits = name.substr(at + std::strlen(kTemporaryInfix));
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return 0;
  return static_cast<pid_t>(std::stol(digits));
}
}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  std::string temporary = path + kTemporaryInfix + std::to_string(::getpid());
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw Error(std::string("cannot create file: ") + std::strerror(errno), temporary,
                "check that the directory exists and is writable");
  }
  size_t written = 0;
  while (written < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + written, bytes.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int saved = errno;
      ::close(fd);
      ::unlink(temporary.c_str());
      throw Error(std::string("write failed: ") + std::strerror(saved), temporary,
                  "check free disk space");
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(temporary.c_str());
    throw Error(std::string("cannot flush file: ") + std::strerror(errno), temporary);
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    int saved = errno;
    ::unlink(temporary.c_str());
    throw Error(std::string("cannot rename into place: ") + std::strerror(saved), path);
  }
  int dir = ::open(directory_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

int64_t max_input_bytes() {
  constexpr int64_t kDefault = int64_t{16} << 30;
  const char* text = std::getenv("LARGEDET_MAX_INPUT_BYTES");
  if (!text || !*text) return kDefault;
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text, &end, 10);
  if (errno != 0 || *end != '\0' || value < 1)
    throw Error("LARGEDET_MAX_INPUT_BYTES is '" + std::string(text) + "'", "environment",
                "give a positive number of bytes, or unset it (default 16 GiB)");
  return value;
}

int64_t check_input_file(const std::string& path, const std::string& what) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw Error("cannot open " + what + ": " + std::strerror(errno), path, "check the path");
  if (S_ISDIR(st.st_mode)) throw Error(what + " is a directory, not a file", path);
  if (!S_ISREG(st.st_mode)) {
    const char* kind = S_ISFIFO(st.st_mode)   ? "a FIFO"
                       : S_ISCHR(st.st_mode)  ? "a character device"
                       : S_ISBLK(st.st_mode)  ? "a block device"
                       : S_ISSOCK(st.st_mode) ? "a socket"
                                              : "not a regular file";
    throw Error(what + " is " + kind + ", not a regular file", path,
                "LargeDet reads its inputs whole: write the data to a file first");
  }
  const int64_t limit = max_input_bytes();
  if (st.st_size > limit)
    throw Error(what + " is " + std::to_string(st.st_size) + " bytes, over the limit of " +
                    std::to_string(limit),
                path, "raise LARGEDET_MAX_INPUT_BYTES if the file is meant to be this large");
  return st.st_size;
}

// One allocation of the size stat gave and reads straight into it (a stream into a stringstream
// copied a 68 MB results file several times over: a sixth of `largedet evaluate`'s time). A file
// that grows meanwhile is read to its end, within the same bound.
std::string read_file(const std::string& path) {
  const int64_t size = check_input_file(path);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Error(std::string("cannot open file: ") + std::strerror(errno), path, "check the path");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  std::string bytes(size_t(size) + 1, '\0');  // the spare byte sees the end without a regrowth
  size_t done = 0;
  for (;;) {
    if (done == bytes.size()) {
      if (int64_t(done) >= max_input_bytes()) {
        throw Error("input grew past the limit of " + std::to_string(max_input_bytes()) +
                        " bytes while it was read",
                    path, "raise LARGEDET_MAX_INPUT_BYTES if the file is meant to be this large");
      }
      bytes.resize(done + (size_t(1) << 16));
    }
    const ssize_t n = ::read(fd, &bytes[done], bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      throw Error(std::string("read failed: ") + std::strerror(error), path);
    }
    if (n == 0) break;
    done += size_t(n);
  }
  bytes.resize(done);
  return bytes;
}

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

void make_directories(const std::string& path, const std::string& what) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec || !is_directory(path))
    throw Error("cannot create " + what + ": " +
                    (ec ? ec.message() : std::string("a file of that name exists")),
                path, "check the path and its permissions");
}

RemovedFiles remove_stale_temporaries(const std::string& directory) {
  RemovedFiles removed;
  DIR* dir = ::opendir(directory.c_str());
  if (!dir) return removed;
  while (dirent* entry = ::readdir(dir)) {
    const pid_t writer = temporary_writer(entry->d_name);
    // Our own pid is a reused number: this process has not written anything yet.
    if (writer == 0 || (writer != ::getpid() && (::kill(writer, 0) == 0 || errno == EPERM)))
      continue;
    const std::string path = directory + "/" + entry->d_name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::unlink(path.c_str()) == 0) {
      ++removed.count;
      removed.bytes += st.st_size;
    }
  }
  ::closedir(dir);
  return removed;
}

}  // namespace largedet
