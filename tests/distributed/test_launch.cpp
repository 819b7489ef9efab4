// largedet launch: worker environment, output prefixes, failure propagation, signal forwarding.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

using largedet::test::quote;
using largedet::test::run_shell;

namespace {
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

TEST(Launch, MissingCommandIsAnError) {
  auto run = run_shell(quote(LARGEDET_CLI) + " launch --nproc-per-node 2 -- /nonexistent/worker");
  EXPECT_EQ(run.code, 127) << run.output;
  EXPECT_NE(run.output.find("cannot run '/nonexistent/worker'"), std::string::npos) << run.output;
}

TEST(Launch, ForwardsSigterm) {
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    ::close(out[0]);
    execl(LARGEDET_CLI, LARGEDET_CLI, "launch", "--nproc-per-node", "2", "--master-port", "0", "--",
          "sh", "-c", "trap 'echo got-TERM; exit 5' TERM; echo ready; sleep 60 & wait",
          static_cast<char*>(nullptr));
    ::_exit(126);
  }
  ::close(out[1]);
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
    ssize_t n = ::read(out[0], buffer, sizeof buffer);
    if (n <= 0) break;
    output.append(buffer, n);
  }
  ASSERT_EQ(count("ready"), 2u) << output;
  ::kill(pid, SIGTERM);
  for (ssize_t n; (n = ::read(out[0], buffer, sizeof buffer)) > 0;) output.append(buffer, n);
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(out[0]);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM) << output;
  EXPECT_NE(output.find("[rank 0] got-TERM"), std::string::npos) << output;
  EXPECT_NE(output.find("[rank 1] got-TERM"), std::string::npos) << output;
}
