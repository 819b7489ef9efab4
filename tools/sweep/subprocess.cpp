#include "sweep/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "largedet/core/error.h"

namespace largedet::tools::sweep {
namespace {

volatile sig_atomic_t g_stop = 0;
volatile pid_t g_child_group = 0;
struct sigaction g_previous_int, g_previous_term;

void forward_signal(int signal) {
  g_stop = 1;
  if (g_child_group > 0) ::kill(-g_child_group, signal);
}

void write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    const ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // a full disk loses log text, not the run
    data += n;
    size -= static_cast<size_t>(n);
  }
}

[[noreturn]] void exec_child(const ChildOptions& options, int output_fd, pid_t parent) {
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) ::_exit(128 + SIGTERM);  // the parent died before prctl
  ::dup2(output_fd, STDOUT_FILENO);
  ::dup2(output_fd, STDERR_FILENO);
  std::vector<char*> argv;
  for (const auto& arg : options.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  ::execv(argv[0], argv.data());
  const std::string message = "cannot run " + options.argv[0] + ": " + std::strerror(errno) + "\n";
  write_all(STDERR_FILENO, message.data(), message.size());
  ::_exit(127);
}

}  // namespace

StopSignals::StopSignals() {
  struct sigaction action {};
  action.sa_handler = forward_signal;
  sigemptyset(&action.sa_mask);
  ::sigaction(SIGINT, &action, &g_previous_int);
  ::sigaction(SIGTERM, &action, &g_previous_term);
}

StopSignals::~StopSignals() {
  ::sigaction(SIGINT, &g_previous_int, nullptr);
  ::sigaction(SIGTERM, &g_previous_term, nullptr);
}

bool StopSignals::stop_requested() { return g_stop != 0; }

int run_child(const ChildOptions& options) {
  const int log = ::open(options.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0)
    throw Error(std::string("cannot open the log: ") + std::strerror(errno), options.log_path);
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    ::close(log);
    throw Error(std::string("cannot create a pipe: ") + std::strerror(errno), options.argv[0]);
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int saved = errno;
    ::close(log);
    ::close(pipe_fds[0]);
    ::close(pipe_fds[1]);
    throw Error(std::string("cannot start a process: ") + std::strerror(saved), options.argv[0]);
  }
  if (pid == 0) exec_child(options, pipe_fds[1], parent);
  // Both sides set the group, so that a signal forwarded right after fork finds it.
  ::setpgid(pid, pid);
  g_child_group = pid;
  ::close(pipe_fds[1]);
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    write_all(log, buffer, static_cast<size_t>(n));
    if (options.echo) write_all(STDOUT_FILENO, buffer, static_cast<size_t>(n));
    if (options.on_output) options.on_output(std::string(buffer, static_cast<size_t>(n)));
  }
  ::close(pipe_fds[0]);
  ::close(log);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  g_child_group = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace largedet::tools::sweep
