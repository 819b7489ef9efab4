// The engine of `largedet launch`: starts this node's workers with the torchrun-style environment
// that Context::from_env reads, serves the rendezvous store (node 0), prefixes the workers' output
// with their rank, forwards SIGINT/SIGTERM, and when a worker fails records the lost rank in the
// store (so the others can name it), stops the rest and returns the failure's exit code.
#pragma once

#include <string>
#include <vector>

namespace largedet::distributed {

struct LaunchOptions {
  int nproc_per_node = 1;
  int nnodes = 1;
  int node_rank = 0;
  std::string master_addr = "127.0.0.1";
  // 0 picks a free port (one-node jobs only: other nodes could not know it).
  int master_port = 29500;
  // After the first failure, how long the other workers get to report their error and exit
  // before they receive SIGTERM (and SIGKILL 5 s later).
  double grace_seconds = 30;
  // "[rank 3] " before every line of the workers' stdout and stderr.
  bool prefix_output = true;
  // The worker command line, e.g. {"largedet", "train", "--config", "x.yaml"}.
  std::vector<std::string> command;
};

// Runs the workers to the end; returns the exit code the launcher should exit with: 0, the first
// failed worker's code (128 + signal for a killed one), or 128 + signal when interrupted.
// Throws largedet::Error for bad options and when node 0 cannot serve the store (port in use).
// Workers get SIGTERM if the launcher dies without stopping them (killed by SIGKILL, say).
int launch(const LaunchOptions& options);

}  // namespace largedet::distributed
