// largedet launch: start this node's workers of a distributed job (see distributed/launcher.h).
//   largedet launch --nproc-per-node 8 [--nnodes 2 --node-rank 0 --master-addr A --master-port P]
//       -- largedet train --config configs/COCO-Detection/faster_rcnn_R_50_FPN_largedet_b1024.yaml
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>

#include "command_registry.h"
#include "executables.h"
#include "largedet/distributed/launcher.h"
#include "validators.h"

namespace {

// `-- largedet train ...` with no largedet on PATH (the recipes spell build/bin/largedet) runs
// this very binary, as torchrun's `-m` runs its own Python: the command a user copies from the
// docs works from the repository root without an install.
bool on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':'))
    if (!dir.empty() && ::access((std::filesystem::path(dir) / name).c_str(), X_OK) == 0)
      return true;
  return false;
}

void resolve_self(std::vector<std::string>& command) {
  if (command.empty() || command[0] != "largedet" || on_path("largedet")) return;
  command[0] = largedet::tools::front_executable().string();
}

void setup_launch(CLI::App& cmd) {
  auto options = std::make_shared<largedet::distributed::LaunchOptions>();
  auto no_prefix = std::make_shared<bool>(false);
  cmd.add_option("--nproc-per-node", options->nproc_per_node, "workers on this node (one per GPU)")
      ->capture_default_str()
      ->check(largedet::tools::at_least_one("workers (one per GPU)"));
  cmd.add_option("--nnodes", options->nnodes, "nodes in the job")
      ->capture_default_str()
      ->check(largedet::tools::at_least_one("nodes"));
  cmd.add_option("--node-rank", options->node_rank, "this node's index, 0 .. nnodes-1")
      ->capture_default_str();
  cmd.add_option("--master-addr", options->master_addr,
                 "address of node 0, which serves the rendezvous store")
      ->capture_default_str();
  cmd.add_option("--master-port", options->master_port,
                 "rendezvous port on node 0; 0 picks a free one (one-node jobs)")
      ->capture_default_str();
  cmd.add_option("--grace-seconds", options->grace_seconds,
                 "after a worker fails, how long the others get to exit before SIGTERM (0 to "
                 "3600)")
      ->check(largedet::tools::finite_in(0, 3600))
      ->capture_default_str();
  cmd.add_flag("--no-prefix", *no_prefix, "do not prefix the workers' output lines with [rank N]");
  cmd.add_option("command", options->command, "the worker command, after `--`")->required();
  cmd.footer(
      "Workers get RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT.\n"
      "When a worker fails the others are told which rank was lost, then stopped; the\n"
      "launcher exits with the failed worker's code. A worker command `largedet ...` runs this\n"
      "binary when no largedet is on PATH.");
  cmd.callback([options, no_prefix] {
    options->prefix_output = !*no_prefix;
    resolve_self(options->command);
    int code = largedet::distributed::launch(*options);
    std::exit(code);
  });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("launch",
                          "Start the local workers of a distributed job with the rendezvous "
                          "environment; stop them all when one fails",
                          setup_launch);
