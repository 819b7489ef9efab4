// Process groups: the communicator that collectives, SyncBatchNorm2d and GradientSync run on.
// World size 1 gets a local group (no store, no sockets); larger worlds get a c10d backend (Gloo on
// CPU, NCCL on CUDA) over a TCPStore rendezvous. Failures never hang silently: every collective
// ends within the context's timeout, and its error names the lost rank when the launcher reported
// one.
#pragma once

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "largedet/distributed/context.h"

namespace largedet::distributed {

enum class ReduceOp { kSum, kMax, kMin };

// A collective in flight.
class Work {
 public:
  virtual ~Work() = default;
  // Blocks until the collective is done. Throws largedet::Error on failure or timeout.
  virtual void wait() = 0;
  virtual bool is_completed() = 0;
};

class ProcessGroup {
 public:
  virtual ~ProcessGroup() = default;
  int rank() const { return context_.rank; }
  int size() const { return context_.world_size; }
  const Context& context() const { return context_; }
  // Where collective buffers must live: CPU for Gloo, this rank's GPU for NCCL.
  virtual c10::Device device() const = 0;

  // In place on every tensor; tensors are dense and contiguous, all on device().
  virtual std::shared_ptr<Work> allreduce_async(std::vector<at::Tensor> tensors,
                                                ReduceOp op = ReduceOp::kSum) = 0;
  virtual std::shared_ptr<Work> broadcast_async(std::vector<at::Tensor> tensors, int root) = 0;
  // outputs[r] receives rank r's `input`; every rank's input has the same shape and type.
  virtual std::shared_ptr<Work> allgather_async(std::vector<at::Tensor> outputs,
                                                at::Tensor input) = 0;
  virtual void barrier() = 0;
  // Another group over the same ranks with a communicator of its own, so that its collectives do
  // not queue behind this group's (SyncBN's small allreduces behind 25 MB gradient buckets).
  // Collective: every rank creates it, with the same name, in the same order.
  virtual std::shared_ptr<ProcessGroup> new_group(const std::string& name) = 0;

  // Blocking forms.
  void allreduce(const at::Tensor& tensor, ReduceOp op = ReduceOp::kSum) {
    allreduce_async({tensor}, op)->wait();
  }
  void broadcast(const at::Tensor& tensor, int root) { broadcast_async({tensor}, root)->wait(); }

 protected:
  explicit ProcessGroup(Context context) : context_(std::move(context)) {}
  Context context_;
};

// The group for `context`. For world size > 1 this is the rendezvous: rank 0 (or the launcher)
// serves a TCPStore at master_addr:master_port, every rank checks in, and all must agree on the
// world size (a clear error names the disagreeing rank, a rank started twice, or the ranks that did
// not join within the timeout); then the backend connects.
std::shared_ptr<ProcessGroup> create_process_group(const Context& context);

// The process-wide group that SyncBatchNorm2d and the collectives use when given none.
// Null (the default) behaves as a world of one.
void set_default_group(std::shared_ptr<ProcessGroup> group);
std::shared_ptr<ProcessGroup> default_group();

// The group SyncBatchNorm2d uses when given none: this one if set, else the default group.
void set_sync_batch_norm_group(std::shared_ptr<ProcessGroup> group);
std::shared_ptr<ProcessGroup> sync_batch_norm_group();

// Context::from_env, create_process_group, set_default_group, a second group for SyncBN
// (new_group("syncbn")) and log::set_rank in one call: what a trainer does at start.
std::shared_ptr<ProcessGroup> init(const ContextOptions& options = {});

// The c10d variables a NCCL group runs with (docs/distributed.md, "Faults"): no blocking wait, so
// that wait() only orders streams, and c10d's watchdog told to record a failure rather than tear
// the process down, so that ours (CollectiveWatchdog) reports it with our error. A variable the
// user set, under any of its names, is kept and reported as theirs. Applied once, before the first
// NCCL group; exposed for tests.
struct NcclEnvSetting {
  std::string name;
  std::string value;
  bool from_user = false;
};
std::vector<NcclEnvSetting> nccl_fault_env(const Environment& env);

// Store keys shared by the launcher (which writes them) and the groups (which read them).
namespace store_keys {
// "largedet/dead/<rank>" holds a dead_record once the launcher saw that rank end abnormally.
std::string dead_rank(int rank);
// The counter (Store::add) that numbers the deaths in the order the launcher saw them.
std::string dead_count();
}  // namespace store_keys

// A dead rank's record: the place of its death among the job's (1 first: the failure the others
// followed) and how it ended ("exited with code N", "killed by signal N (name)").
struct DeadRecord {
  int64_t order = 0;
  std::string how;
};
std::string format_dead_record(const DeadRecord& record);  // "<order> <how>"
// What format_dead_record wrote; a record without its order (an older launcher's) comes last.
DeadRecord parse_dead_record(const std::string& text);

}  // namespace largedet::distributed
