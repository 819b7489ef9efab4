#include "largedet/distributed/launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>
#include <map>

#include "largedet/core/error.h"
#include "largedet/core/logging.h"
#include "largedet/core/threads.h"
#include "largedet/distributed/context.h"
#include "largedet/distributed/process_group.h"

namespace largedet::distributed {
namespace {

using Clock = std::chrono::steady_clock;

volatile sig_atomic_t g_signal = 0;
void on_signal(int sig) { g_signal = sig; }

struct Stream {
  int fd = -1;
  int target = STDOUT_FILENO;
  std::string pending;  // a partial line
};

struct Worker {
  int rank = 0;
  pid_t pid = -1;
  bool running = false;
  int code = 0;           // exit code, or 128 + signal
  bool signaled = false;  // killed by a signal (not an exit with a code above 128)
  Stream out, err;
};

void write_all(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

// A progress bar redraws its line: "\r\033[K" (carriage return, erase the line) and the bar,
// without a newline. The launcher forwards such a redraw at once, prefixed, and erases a bar on
// the terminal before writing another line over it.
constexpr const char* kEraseLine = "\r\033[K";
bool g_bar_visible = false;

// What follows the last carriage return of `text` (and its erase-line code): what a terminal shows.
std::string after_redraws(const std::string& text) {
  const size_t cr = text.rfind('\r');
  if (cr == std::string::npos) return text;
  std::string rest = text.substr(cr + 1);
  if (rest.rfind("\033[K", 0) == 0) rest.erase(0, 3);
  return rest;
}

// Forwards complete lines (all of it at EOF), each with the rank prefix, and a pending redraw.
void forward(Stream& s, const std::string& prefix, bool eof) {
  std::string text;
  size_t start = 0;
  for (size_t nl; (nl = s.pending.find('\n', start)) != std::string::npos; start = nl + 1) {
    const std::string line = s.pending.substr(start, nl - start);
    const bool redrawn = line.find('\r') != std::string::npos;
    if (g_bar_visible || redrawn) text += kEraseLine;
    g_bar_visible = false;
    const std::string shown = after_redraws(line);
    // A bar's final newline (or a bare erase) leaves nothing to print.
    if (!(redrawn && shown.empty())) text += prefix + shown + "\n";
  }
  s.pending.erase(0, start);
  if (eof && !s.pending.empty()) {
    text += prefix + after_redraws(s.pending) + "\n";
    s.pending.clear();
  } else if (s.pending.find('\r') != std::string::npos) {
    const std::string bar = after_redraws(s.pending);
    text += kEraseLine;
    if (!bar.empty()) text += prefix + bar;
    g_bar_visible = !bar.empty();
    s.pending.clear();
  }
  if (!text.empty()) write_all(s.target, text);
}

// Reads what is available; returns false at EOF (and closes the descriptor).
bool pump(Stream& s, const std::string& prefix) {
  char buffer[65536];
  ssize_t n = ::read(s.fd, buffer, sizeof buffer);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) {
    forward(s, prefix, true);
    ::close(s.fd);
    s.fd = -1;
    return false;
  }
  s.pending.append(buffer, static_cast<size_t>(n));
  forward(s, prefix, false);
  return true;
}

std::vector<std::string> worker_environment(const LaunchOptions& o, int local_rank, int port) {
  Environment env = process_environment();
  const int world = o.nnodes * o.nproc_per_node;
  env["RANK"] = std::to_string(o.node_rank * o.nproc_per_node + local_rank);
  env["WORLD_SIZE"] = std::to_string(world);
  env["LOCAL_RANK"] = std::to_string(local_rank);
  env["LOCAL_WORLD_SIZE"] = std::to_string(o.nproc_per_node);
  env["GROUP_RANK"] = std::to_string(o.node_rank);
  env["MASTER_ADDR"] = o.master_addr;
  env["MASTER_PORT"] = std::to_string(port);
  env["LARGEDET_AGENT_STORE"] = "1";
  // The workers' stderr is our pipe: tell them whether ours is a terminal (engine/progress.h).
  if (::isatty(STDERR_FILENO) == 1) env["LARGEDET_STDERR_IS_TERMINAL"] = "1";
  // As torchrun: N processes each with all cores' worth of threads oversubscribe the machine.
  if (o.nproc_per_node > 1 && env.count("OMP_NUM_THREADS") == 0) env["OMP_NUM_THREADS"] = "1";
  // More workers than cores: each worker's spinning threads would take the core from another's.
  const auto policy = omp_wait_policy_for(0, o.nproc_per_node, usable_cores());
  if (!policy.empty() && env.count("OMP_WAIT_POLICY") == 0) env["OMP_WAIT_POLICY"] = policy;
  std::vector<std::string> out;
  for (auto& [key, value] : env) out.push_back(key + "=" + value);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& items) {
  std::vector<char*> out;
  for (auto& item : items) out.push_back(item.data());
  out.push_back(nullptr);
  return out;
}

// A worker that exits 130/143 handled SIGINT/SIGTERM itself and saved a checkpoint (train's
// documented codes): it was stopped, not killed.
std::string describe_status(const Worker& w) {
  if (w.signaled)
    return "killed by signal " + std::to_string(w.code - 128) + " (" + strsignal(w.code - 128) +
           ")";
  if (w.code == 128 + SIGINT || w.code == 128 + SIGTERM)
    return "stopped by " + std::string(w.code == 128 + SIGINT ? "SIGINT" : "SIGTERM") +
           " (exit code " + std::to_string(w.code) + ")";
  return "exited with code " + std::to_string(w.code);
}

class Launcher {
 public:
  explicit Launcher(const LaunchOptions& o) : o_(o) {}

  int run() {
    open_store();
    struct sigaction action {};
    action.sa_handler = on_signal;
    sigemptyset(&action.sa_mask);
    struct sigaction old_int {
    }, old_term{};
    sigaction(SIGINT, &action, &old_int);
    sigaction(SIGTERM, &action, &old_term);
    g_signal = 0;
    try {
      for (int local = 0; local < o_.nproc_per_node; ++local) spawn(local);
      supervise();
    } catch (...) {
      stop(SIGKILL);
      sigaction(SIGINT, &old_int, nullptr);
      sigaction(SIGTERM, &old_term, nullptr);
      throw;
    }
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    if (interrupted_) return 128 + interrupted_;
    return failure_code_;
  }

 private:
  void open_store() {
    LARGEDET_CHECK(!o_.command.empty(), "launch needs a worker command after `--`");
    if (o_.nproc_per_node < 1 || o_.nnodes < 1 || o_.node_rank < 0 || o_.node_rank >= o_.nnodes)
      throw Error("need --nproc-per-node >= 1, --nnodes >= 1 and 0 <= --node-rank < --nnodes",
                  "largedet launch");
    if (o_.master_port < 0 || o_.master_port > 65535 || (o_.master_port == 0 && o_.nnodes > 1))
      throw Error("--master-port " + std::to_string(o_.master_port) +
                      " is not usable: give a TCP port (0, a free one, only with --nnodes 1)",
                  "largedet launch");
    port_ = o_.master_port;
    if (o_.node_rank != 0) return;  // node 0's launcher serves the store
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<std::uint16_t>(o_.master_port);
    store_options.isServer = true;
    store_options.waitWorkers = false;
    c10::intrusive_ptr<c10d::TCPStore> server;
    try {
      server = c10::make_intrusive<c10d::TCPStore>(o_.master_addr, store_options);
    } catch (const std::exception& e) {
      std::string what = e.what();
      if (what.find("in use") != std::string::npos || what.find("errno: 98") != std::string::npos)
        throw Error("port " + std::to_string(o_.master_port) + " is already in use",
                    "largedet launch --master-port",
                    "another job or a leftover process holds it; pick another port, or 0 for a "
                    "free one");
      throw Error("cannot serve the rendezvous store on port " + std::to_string(o_.master_port) +
                      ": " + what.substr(0, what.find('\n')),
                  "largedet launch");
    }
    port_ = server->getPort();
    store_ = server;
    log::info() << "launch: " << o_.nproc_per_node * o_.nnodes << " workers (" << o_.nproc_per_node
                << " here), rendezvous at " << o_.master_addr << ":" << port_;
  }

  void spawn(int local) {
    Worker w;
    w.rank = o_.node_rank * o_.nproc_per_node + local;
    int out[2], err[2];
    if (::pipe(out) != 0 || ::pipe(err) != 0)
      throw Error("pipe failed: " + std::string(strerror(errno)));
    std::vector<std::string> env = worker_environment(o_, local, port_);
    std::vector<std::string> argv = o_.command;
    auto c_env = c_strings(env);
    auto c_argv = c_strings(argv);
    const pid_t launcher = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) throw Error("fork failed: " + std::string(strerror(errno)));
    if (pid == 0) {
      // Own process group: signals reach the worker's children too, and a terminal's Ctrl-C goes
      // through the launcher once rather than to everyone at once.
      ::setpgid(0, 0);
      // A launcher killed outright (SIGKILL, OOM killer) cannot stop its workers: the kernel does,
      // with SIGTERM, as the launcher itself would have. The signal fires when the
      // forking thread exits; launch() forks and supervises in one thread that outlives the
      // workers. A launcher that died before prctl took effect is caught by the getppid check.
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != launcher) ::_exit(128 + SIGTERM);
      ::dup2(out[1], STDOUT_FILENO);
      ::dup2(err[1], STDERR_FILENO);
      ::close(out[0]);
      ::close(err[0]);
      ::close(out[1]);
      ::close(err[1]);
      ::execvpe(c_argv[0], c_argv.data(), c_env.data());
      std::string message =
          "largedet launch: cannot run '" + argv[0] + "': " + strerror(errno) + "\n";
      write_all(STDERR_FILENO, message);
      ::_exit(127);
    }
    ::setpgid(pid, pid);
    ::close(out[1]);
    ::close(err[1]);
    w.pid = pid;
    w.running = true;
    w.out = {out[0], STDOUT_FILENO, ""};
    w.err = {err[0], STDERR_FILENO, ""};
    workers_.push_back(w);
  }

  std::string prefix(const Worker& w) const {
    return o_.prefix_output ? "[rank " + std::to_string(w.rank) + "] " : "";
  }

  void signal_all(int sig) {
    for (auto& w : workers_)
      if (w.running) ::kill(-w.pid, sig);
  }

  void stop(int sig) {
    signal_all(sig);
    if (sig == SIGKILL)
      for (auto& w : workers_)
        if (w.running) ::waitpid(w.pid, nullptr, 0);
  }

  void record_exit(Worker& w, int status) {
    w.running = false;
    w.signaled = !WIFEXITED(status);
    w.code = w.signaled ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
    if (w.code != 0) mark_in_store(w);
    if (w.code != 0 && !stopping_) {
      failure_code_ = w.code;
      if (!interrupted_)
        log::error() << "launch: rank " << w.rank << " " << describe_status(w)
                     << "; stopping the other workers";
      begin_stopping();
    }
  }

  // Tells the surviving ranks who is gone (see lost_ranks in process_group_c10d.cpp).
  void mark_in_store(const Worker& w) {
    try {
      if (!store_) {  // other nodes write into node 0's store
        c10d::TCPStoreOptions client;
        client.port = static_cast<std::uint16_t>(port_);
        client.timeout = std::chrono::seconds(10);
        store_ = c10::make_intrusive<c10d::TCPStore>(o_.master_addr, client);
      }
      const std::string record =
          format_dead_record({store_->add(store_keys::dead_count(), 1), describe_status(w)});
      store_->set(store_keys::dead_rank(w.rank),
                  std::vector<uint8_t>(record.begin(), record.end()));
    } catch (const std::exception& e) {
      log::warning() << "launch: could not record rank " << w.rank
                     << "'s exit in the store: " << std::string(e.what()).substr(0, 200);
    }
  }

  void begin_stopping() {
    if (stopping_) return;
    stopping_ = true;
    stop_at_ =
        Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(o_.grace_seconds * 1000));
  }

  void supervise() {
    bool terminated = false, killed = false;
    while (true) {
      if (g_signal && !interrupted_) {
        interrupted_ = g_signal;
        log::warning() << "launch: got signal " << interrupted_ << ", forwarding it to the workers";
        signal_all(interrupted_);
        stopping_ = true;
        stop_at_ = Clock::now() + std::chrono::seconds(10);
      }
      // Output first, then exits, so that a worker's last words come before our verdict.
      std::vector<pollfd> fds;
      std::vector<Stream*> streams;
      std::vector<const Worker*> owners;
      for (auto& w : workers_)
        for (Stream* s : {&w.out, &w.err})
          if (s->fd >= 0) {
            fds.push_back({s->fd, POLLIN, 0});
            streams.push_back(s);
            owners.push_back(&w);
          }
      if (!fds.empty()) {
        int ready = ::poll(fds.data(), fds.size(), 50);
        for (size_t i = 0; ready > 0 && i < fds.size(); ++i)
          if (fds[i].revents & (POLLIN | POLLHUP | POLLERR)) pump(*streams[i], prefix(*owners[i]));
      }
      bool any_running = false;
      for (auto& w : workers_) {
        if (!w.running) continue;
        int status = 0;
        pid_t done = ::waitpid(w.pid, &status, WNOHANG);
        if (done == w.pid)
          record_exit(w, status);
        else
          any_running = true;
      }
      if (!any_running) {
        if (fds.empty() || Clock::now() > drain_until()) break;
        continue;
      }
      if (fds.empty()) ::usleep(50000);
      if (stopping_ && Clock::now() > stop_at_) {
        if (!terminated) {
          log::warning() << "launch: sending SIGTERM to the workers still running";
          signal_all(SIGTERM);
          terminated = true;
          stop_at_ = Clock::now() + std::chrono::seconds(5);
        } else if (!killed) {
          signal_all(SIGKILL);
          killed = true;
        }
      }
    }
    for (auto& w : workers_)
      for (Stream* s : {&w.out, &w.err})
        if (s->fd >= 0) {
          forward(*s, prefix(w), true);
          ::close(s->fd);
          s->fd = -1;
        }
  }

  // Once every worker is gone, a grandchild may still hold a pipe open: do not wait on it long.
  Clock::time_point drain_until() {
    if (drain_deadline_ == Clock::time_point{})
      drain_deadline_ = Clock::now() + std::chrono::seconds(2);
    return drain_deadline_;
  }

  LaunchOptions o_;
  int port_ = 0;
  c10::intrusive_ptr<c10d::Store> store_;
  std::vector<Worker> workers_;
  int failure_code_ = 0;
  int interrupted_ = 0;
  bool stopping_ = false;
  Clock::time_point stop_at_{};
  Clock::time_point drain_deadline_{};
};

}  // namespace

int launch(const LaunchOptions& options) { return Launcher(options).run(); }

}  // namespace largedet::distributed
