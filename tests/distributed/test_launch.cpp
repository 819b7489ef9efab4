// largedet launch: worker environment, output prefixes, failure propagation, signal forwarding.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "harness.h"

using largedet::test::quote;
using largedet::test::run_shell;

namespace {
// Starts `largedet launch` with two workers running `sh -c SCRIPT`, its stdout and stderr on a
// pipe; returns the launcher's pid and the pipe's read end.
std::pair<pid_t, int> start_launcher(bool prefixed, const char* script) {
  std::vector<const char*> argv = {LARGEDET_CLI, "launch",        "--nproc-per-node",
                                   "2",          "--master-port", "0"};
  if (!prefixed) argv.push_back("--no-prefix");
  for (const char* arg : {"--", "sh", "-c", script}) argv.push_back(arg);
  argv.push_back(nullptr);
  int out[2];
  if (::pipe(out) != 0) return {-1, -1};
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    // Only fds 1 and 2 may hold the pipe: a worker's background child that inherited another copy
    // would keep it open, and the test's reads waiting, after the launcher has exited.
    ::close(out[0]);
    ::close(out[1]);
    ::execv(LARGEDET_CLI, const_cast<char* const*>(argv.data()));
    ::_exit(126);
  }
  ::close(out[1]);
  return {pid, out[0]};
}

std::string launch(const std::string& args, const std::string& script) {
  return quote(LARGEDET_CLI) + " launch " + args + " -- sh -c " + quote(script);
}
}  // namespace

TEST(Launch, WorkersGetTheirEnvironmentAndPrefixedOutput) {
  auto run = run_shell(launch("--nproc-per-node 2 --master-port 0",
                              "echo R=$RANK W=$WORLD_SIZE L=$LOCAL_RANK LW=$LOCAL_WORLD_SIZE "
                              "A=$MASTER_ADDR; echo to-stderr >&2"));
  EXPECT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("[rank 0] R=0 W=2 L=0 LW=2 A=127.0.0.1"), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("[rank 1] R=1 W=2 L=1 LW=2 A=127.0.0.1"), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("[rank 1] to-stderr"), std::string::npos) << run.output;
}

// `-- largedet ...` as the docs write it, with no largedet on PATH: the launching binary runs.
TEST(Launch, BareLargedetWithoutOneOnPathIsThisBinary) {
  auto run = run_shell("PATH=/usr/bin:/bin " + quote(LARGEDET_CLI) +
                       " launch --nproc-per-node 1 --master-port 0 -- largedet config --help");
  EXPECT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("[rank 0] "), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("--dump"), std::string::npos) << run.output;
  // Any other command is still looked up on PATH, as a shell would.
  run = run_shell("PATH=/usr/bin:/bin " + quote(LARGEDET_CLI) +
                  " launch --nproc-per-node 1 --master-port 0 -- largedet-nonexistent");
  EXPECT_EQ(run.code, 127) << run.output;
  EXPECT_NE(run.output.find("cannot run 'largedet-nonexistent'"), std::string::npos) << run.output;
}

// A progress bar's redraws ("\r\033[K" and the bar, no newline) are forwarded at once with the
// prefix, and a later line erases the bar first instead of being appended to it.
TEST(Launch, ProgressRedrawsAreForwardedWithThePrefix) {
  auto run = run_shell(launch("--nproc-per-node 1 --master-port 0",
                              "printf '\\r\\033[Kbar 1\\r\\033[Kbar 2' >&2; sleep 0.5; "
                              "printf '\\r\\033[K' >&2; echo done >&2"));
  EXPECT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("\r\033[K[rank 0] bar 2"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("[rank 0] done\n"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("[rank 0] \r"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("bar 2[rank 0]"), std::string::npos) << run.output;
}

// Workers learn whether the launcher's stderr is a terminal (theirs is its pipe), so that rank 0
// draws its progress bar under `launch` as it does alone.
TEST(Launch, WorkersLearnWhetherTheLaunchersStderrIsATerminal) {
  auto piped = run_shell(
      launch("--nproc-per-node 1 --master-port 0", "echo T=${LARGEDET_STDERR_IS_TERMINAL:-no}"));
  EXPECT_NE(piped.output.find("T=no"), std::string::npos) << piped.output;
  if (run_shell("command -v script").code != 0) GTEST_SKIP() << "no script(1) for a terminal";
  auto terminal = run_shell("script -qec " +
                            quote(launch("--nproc-per-node 1 --master-port 0",
                                         "echo T=${LARGEDET_STDERR_IS_TERMINAL:-no}")) +
                            " /dev/null");
  EXPECT_NE(terminal.output.find("T=1"), std::string::npos) << terminal.output;
}

TEST(Launch, SecondNodeRanksFollowTheFirstNodes) {
  // Node 1 of 2 does not serve the store, so it can start alone; its workers are ranks 2 and 3.
  auto run = run_shell(launch("--nproc-per-node 2 --nnodes 2 --node-rank 1 --master-port 1",
                              "echo R=$RANK W=$WORLD_SIZE L=$LOCAL_RANK"));
  EXPECT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("[rank 3] R=3 W=4 L=1"), std::string::npos) << run.output;
}

TEST(Launch, AFailedWorkerStopsTheOthersAndSetsTheExitCode) {
  auto run = run_shell(launch("--nproc-per-node 3 --master-port 0 --grace-seconds 0.5",
                              "if [ $RANK = 1 ]; then exit 7; fi; sleep 60"));
  EXPECT_EQ(run.code, 7) << run.output;
  EXPECT_NE(run.output.find("rank 1 exited with code 7"), std::string::npos) << run.output;
}

// Exit code 130/143 is train's "stopped by SIGINT/SIGTERM, checkpoint saved": a stop, not a kill;
// a worker really killed by a signal is named so.
TEST(Launch, AStoppedWorkerIsNotReportedAsKilled) {
  auto run = run_shell(launch("--nproc-per-node 2 --master-port 0 --grace-seconds 0.5",
                              "if [ $RANK = 1 ]; then exit 143; fi; sleep 60"));
  EXPECT_EQ(run.code, 143) << run.output;
  EXPECT_NE(run.output.find("rank 1 stopped by SIGTERM (exit code 143)"), std::string::npos)
      << run.output;
  EXPECT_EQ(run.output.find("killed by signal 15"), std::string::npos) << run.output;
  run = run_shell(launch("--nproc-per-node 2 --master-port 0 --grace-seconds 0.5",
                         "if [ $RANK = 1 ]; then kill -9 $$; fi; sleep 60"));
  EXPECT_NE(run.output.find("rank 1 killed by signal 9"), std::string::npos) << run.output;
}

TEST(Launch, GraceSecondsMustBeAFiniteNumberOfSeconds) {
  for (const char* bad : {"nan", "-1", "1e308", "inf"}) {
    auto run = run_shell(quote(LARGEDET_CLI) + " launch --grace-seconds " + bad + " -- true");
    EXPECT_NE(run.code, 0) << bad;
    EXPECT_NE(run.output.find("is not a number from 0 to 3600"), std::string::npos)
        << bad << ": " << run.output;
  }
}

TEST(Launch, ZeroWorkersIsRefusedInWords) {
  auto run = run_shell(quote(LARGEDET_CLI) + " launch --nproc-per-node 0 -- true");
  EXPECT_NE(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("--nproc-per-node: 0 workers"), std::string::npos) << run.output;
  EXPECT_EQ(run.output.find("1797693"), std::string::npos) << run.output;
}

TEST(Launch, MissingCommandIsAnError) {
  auto run = run_shell(quote(LARGEDET_CLI) + " launch --nproc-per-node 2 -- /nonexistent/worker");
  EXPECT_EQ(run.code, 127) << run.output;
  EXPECT_NE(run.output.find("cannot run '/nonexistent/worker'"), std::string::npos) << run.output;
}

TEST(Launch, ForwardsSigterm) {
  const auto [pid, fd] =
      start_launcher(true, "trap 'echo got-TERM; exit 5' TERM; echo ready; sleep 60 & wait");
  ASSERT_GE(fd, 0);
  std::string output;
  char buffer[4096];
  // Both workers are up (their trap is set) before we signal the launcher.
  auto count = [&](const std::string& word) {
    size_t n = 0;
    for (size_t at = output.find(word); at != std::string::npos; at = output.find(word, at + 1))
      ++n;
    return n;
  };
  while (count("ready") < 2) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    output.append(buffer, n);
  }
  ASSERT_EQ(count("ready"), 2u) << output;
  ::kill(pid, SIGTERM);
  for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) output.append(buffer, n);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(fd);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM) << output;
  EXPECT_NE(output.find("[rank 0] got-TERM"), std::string::npos) << output;
  EXPECT_NE(output.find("[rank 1] got-TERM"), std::string::npos) << output;
}

namespace {
// A pid that is gone or a zombie waiting for its new parent to reap it.
bool process_gone(pid_t pid) {
  FILE* stat = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!stat) return true;
  char state = '?';
  int parsed = std::fscanf(stat, "%*d (%*[^)]) %c", &state);
  std::fclose(stat);
  return parsed == 1 && (state == 'Z' || state == 'X');
}
}  // namespace

TEST(Launch, WorkersDieWithAKilledLauncher) {
  const auto [pid, fd] = start_launcher(false, "echo pid=$$; exec sleep 60");
  ASSERT_GE(fd, 0);
  std::string output;
  std::vector<pid_t> workers;
  char buffer[4096];
  while (workers.size() < 2) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) break;
    output.append(buffer, n);
    workers.clear();
    for (size_t at = output.find("pid="); at != std::string::npos; at = output.find("pid=", at + 1))
      workers.push_back(static_cast<pid_t>(std::stol(output.substr(at + 4))));
  }
  ASSERT_EQ(workers.size(), 2u) << output;
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ::close(fd);
  for (pid_t worker : workers) {
    bool gone = false;
    for (int tries = 0; tries < 100 && !gone; ++tries) {
      gone = process_gone(worker);
      if (!gone) ::usleep(50000);
    }
    EXPECT_TRUE(gone) << "worker " << worker << " outlived its launcher by 5 s";
    if (!gone) ::kill(worker, SIGKILL);
  }
}
