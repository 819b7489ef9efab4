// Counting the collective waits that block the host. Under Gloo every wait() blocks until the
// collective is done (its work runs on the host's threads); under NCCL wait() only makes the
// current CUDA stream wait for NCCL's, unless c10d's blocking wait is on (docs/distributed.md,
// "Faults"). A blocked host queues no kernels ahead of the GPU, so each such wait drains it: with
// SyncBN that is two per norm layer per micro-batch. `largedet bench model --profile` under
// `largedet launch` prints the count per training step.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "largedet/distributed/process_group.h"

namespace largedet::distributed {

// Whether wait() on a collective of `backend` ("gloo" or "nccl") blocks the host. `nccl_env` is
// what nccl_fault_env returns: under NCCL the blocking wait is on when TORCH_NCCL_BLOCKING_WAIT
// (or its old name) reads true as c10d reads it (y, yes, 1, t, true; any case). A barrier blocks
// the host under every backend and is not asked about.
bool waits_block_host(const std::string& backend, const std::vector<NcclEnvSetting>& nccl_env);

// One wait() on collective `op` that blocked the host, counted under a HostWaitCounter.
void note_host_wait(const std::string& op);

struct HostWaitCounts {
  int64_t waits = 0;
  std::map<std::string, int64_t> by_op;  // "allgather", "allreduce", "broadcast", "barrier"
};

// Counts the host waits of every thread while it lives; one counter at a time. A wait counts
// whether or not its collective had already finished: it is where the host depends on it.
class HostWaitCounter {
 public:
  HostWaitCounter();
  ~HostWaitCounter();
  HostWaitCounter(const HostWaitCounter&) = delete;
  HostWaitCounter& operator=(const HostWaitCounter&) = delete;

  HostWaitCounts counts() const;
};

}  // namespace largedet::distributed
