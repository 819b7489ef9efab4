// largedet launch: start this node's workers of a distributed job (see distributed/launcher.h).
//   largedet launch --nproc-per-node 8 [--nnodes 2 --node-rank 0 --master-addr A --master-port P]
//       -- largedet train --config configs/coco/r50_fpn_1k.yaml
#include <cstdlib>
#include <memory>

#include "command_registry.h"
#include "largedet/distributed/launcher.h"

namespace {

// CLI11's PositiveNumber says "not in range 0.000000 to 1.797693e+308"; say it in words.
CLI::Validator at_least_one(const std::string& what) {
  return CLI::Validator(
      [what](std::string& value) -> std::string {
        char* end = nullptr;
        long n = std::strtol(value.c_str(), &end, 10);
        if (end == value.c_str() || *end != '\0' || n < 1)
          return value + " " + what + ": give at least 1";
        return "";
      },
      "INT>=1");
}

void setup_launch(CLI::App& cmd) {
  auto options = std::make_shared<largedet::distributed::LaunchOptions>();
  auto no_prefix = std::make_shared<bool>(false);
  cmd.add_option("--nproc-per-node", options->nproc_per_node, "workers on this node (one per GPU)")
      ->capture_default_str()
      ->check(at_least_one("workers (one per GPU)"));
  cmd.add_option("--nnodes", options->nnodes, "nodes in the job")
      ->capture_default_str()
      ->check(at_least_one("nodes"));
  cmd.add_option("--node-rank", options->node_rank, "this node's index, 0 .. nnodes-1")
      ->capture_default_str();
  cmd.add_option("--master-addr", options->master_addr,
                 "address of node 0, which serves the rendezvous store")
      ->capture_default_str();
  cmd.add_option("--master-port", options->master_port,
                 "rendezvous port on node 0; 0 picks a free one (one-node jobs)")
      ->capture_default_str();
  cmd.add_option("--grace-seconds", options->grace_seconds,
                 "after a worker fails, how long the others get to exit before SIGTERM")
      ->capture_default_str();
  cmd.add_flag("--no-prefix", *no_prefix, "do not prefix the workers' output lines with [rank N]");
  cmd.add_option("command", options->command, "the worker command, after `--`")->required();
  cmd.footer(
      "Workers get RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT.\n"
      "When a worker fails the others are told which rank was lost, then stopped; the\n"
      "launcher exits with the failed worker's code.");
  cmd.callback([options, no_prefix] {
    options->prefix_output = !*no_prefix;
    int code = largedet::distributed::launch(*options);
    std::exit(code);
  });
}

}  // namespace

LARGEDET_REGISTER_COMMAND("launch",
                          "Start the local workers of a distributed job with the rendezvous "
                          "environment; stop them all when one fails",
                          setup_launch);
