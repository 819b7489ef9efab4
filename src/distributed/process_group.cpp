// The local group (world size 1) and the default-group registry; the c10d groups live in
// process_group_c10d.cpp.
#include "largedet/distributed/process_group.h"

#include <chrono>
#include <limits>
#include <mutex>
#include <string>

#include "largedet/core/logging.h"

namespace largedet::distributed {

// Defined in process_group_c10d.cpp.
std::shared_ptr<ProcessGroup> create_c10d_process_group(const Context& context);

namespace {

class DoneWork : public Work {
 public:
  void wait() override {}
  bool is_completed() override { return true; }
};

// A world of one: reductions and broadcasts are identities, all-gather is a copy.
class LocalProcessGroup : public ProcessGroup {
 public:
  explicit LocalProcessGroup(Context context) : ProcessGroup(std::move(context)) {}
  c10::Device device() const override { return c10::Device(c10::kCPU); }
  std::shared_ptr<Work> allreduce_async(std::vector<at::Tensor>, ReduceOp) override {
    return std::make_shared<DoneWork>();
  }
  std::shared_ptr<Work> broadcast_async(std::vector<at::Tensor>, int) override {
    return std::make_shared<DoneWork>();
  }
  std::shared_ptr<Work> allgather_async(std::vector<at::Tensor> outputs,
                                        at::Tensor input) override {
    outputs.at(0).copy_(input);
    return std::make_shared<DoneWork>();
  }
  void barrier() override {}
  std::shared_ptr<ProcessGroup> new_group(const std::string&) override {
    return std::make_shared<LocalProcessGroup>(context_);
  }
};

std::mutex g_default_mutex;
std::shared_ptr<ProcessGroup> g_default, g_sync_batch_norm;

}  // namespace

std::shared_ptr<ProcessGroup> create_process_group(const Context& context) {
  if (context.world_size == 1) return std::make_shared<LocalProcessGroup>(context);
  return create_c10d_process_group(context);
}

void set_default_group(std::shared_ptr<ProcessGroup> group) {
  std::lock_guard<std::mutex> lock(g_default_mutex);
  g_default = std::move(group);
}

std::shared_ptr<ProcessGroup> default_group() {
  std::lock_guard<std::mutex> lock(g_default_mutex);
  return g_default;
}

void set_sync_batch_norm_group(std::shared_ptr<ProcessGroup> group) {
  std::lock_guard<std::mutex> lock(g_default_mutex);
  g_sync_batch_norm = std::move(group);
}

std::shared_ptr<ProcessGroup> sync_batch_norm_group() {
  std::lock_guard<std::mutex> lock(g_default_mutex);
  return g_sync_batch_norm ? g_sync_batch_norm : g_default;
}

std::shared_ptr<ProcessGroup> init(const ContextOptions& options) {
  Context context = Context::from_env(options);
  if (context.is_distributed()) log::set_rank(context.rank);
  log::info() << "distributed: " << context.describe();
  const auto start = std::chrono::steady_clock::now();
  auto group = create_process_group(context);
  set_default_group(group);
  if (context.is_distributed()) {
    set_sync_batch_norm_group(group->new_group("syncbn"));
    // The rendezvous' cost grows with the world: rank 0 says what it was (docs/distributed.md).
    if (context.rank == 0) {
      log::info() << "distributed: " << context.world_size << " ranks connected in "
                  << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()
                  << " s";
    }
  }
  return group;
}

namespace store_keys {
std::string dead_rank(int rank) { return "largedet/dead/" + std::to_string(rank); }
std::string dead_count() { return "largedet/dead_count"; }
}  // namespace store_keys

std::string format_dead_record(const DeadRecord& record) {
  return std::to_string(record.order) + " " + record.how;
}

DeadRecord parse_dead_record(const std::string& text) {
  const auto space = text.find(' ');
  if (space != std::string::npos && space > 0 && text.find_first_not_of("0123456789") == space)
    return {std::stoll(text.substr(0, space)), text.substr(space + 1)};
  return {std::numeric_limits<int64_t>::max(), text};
}

}  // namespace largedet::distributed
