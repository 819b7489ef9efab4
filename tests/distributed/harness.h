// Multi-process tests: a test in this binary starts `largedet launch` with this same binary as the
// worker command, running one DistWorker.DISABLED_* test per rank (disabled so that they only
// run when asked for by name). Parameters reach the workers through the environment.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "common/shell.h"
#include "largedet/distributed/process_group.h"

namespace largedet::test {

// `env ... largedet launch --nproc-per-node N --master-port 0 <launch_args> -- <this binary>
//  --gtest_filter=DistWorker.DISABLED_<worker>`.
Run launch_workers(int nproc, const std::string& worker,
                   const std::map<std::string, std::string>& env = {},
                   const std::string& launch_args = "");
// A worker's parameter from the environment.
std::string param(const std::string& name, const std::string& fallback = "");
// In a worker: one intra-op thread (two cores shared by several ranks), then
// distributed::init() with `timeout_s`.
std::shared_ptr<distributed::ProcessGroup> init_worker(double timeout_s = 60);
// A TCP port that nothing listens on right now (for tests that need a fixed port).
int free_port();

}  // namespace largedet::test
