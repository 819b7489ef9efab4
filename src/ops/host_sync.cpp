#include "largedet/ops/host_sync.h"

#include <ATen/record_function.h>

#include <atomic>
#include <mutex>
#include <set>

#include "largedet/core/error.h"

namespace largedet::ops {
namespace {

struct State {
  std::atomic<bool> active{false};
  std::atomic<int64_t> ops{0};
  std::mutex mutex;
  HostSyncCounts counts;  // syncs and syncs_by_name, under the mutex
};

State& state() {
  static State* s = new State;
  return *s;
}

// ATen ops whose result (a value or a size) is decided by data on the device.
bool is_syncing_op(const char* name) {
  static const std::set<std::string> kSyncing = {"aten::_local_scalar_dense",
                                                 "aten::nonzero",
                                                 "aten::masked_select",
                                                 "aten::_unique",
                                                 "aten::_unique2",
                                                 "aten::unique_dim",
                                                 "aten::unique_consecutive",
                                                 "aten::unique_dim_consecutive",
                                                 "aten::equal",
                                                 "aten::is_nonzero",
                                                 "aten::nonzero_numpy",
                                                 "aten::masked_scatter"};
  return kSyncing.count(name) != 0;
}

// `prefix` + `what` names the sync; the name is built only while a profiler counts, so that the
// helpers cost nothing in a normal step.
void count_sync(const char* prefix, const char* what) {
  State& s = state();
  if (!s.active.load()) return;
  std::lock_guard<std::mutex> lock(s.mutex);
  ++s.counts.syncs;
  ++s.counts.syncs_by_name[std::string(prefix) + what];
}

// Per thread: how deep in dispatched ops, and in syncing ops, the thread is (ops nested in
// others, a nonzero inside masked_select, are not counted again).
thread_local int op_depth = 0;
thread_local int sync_depth = 0;

std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& fn) {
  if (op_depth++ == 0) state().ops.fetch_add(1);
  if (is_syncing_op(fn.name()) && sync_depth++ == 0) count_sync("", fn.name());
  return nullptr;
}

void on_exit(const at::RecordFunction& fn, at::ObserverContext*) {
  --op_depth;
  if (is_syncing_op(fn.name())) --sync_depth;
}

}  // namespace

at::Tensor read_to_host(const at::Tensor& t, const char* what) {
  count_sync("largedet::", what);
  return t.to(at::kCPU);
}

void note_host_sync(const char* what) { count_sync("largedet::", what); }

HostSyncProfiler::HostSyncProfiler() {
  State& s = state();
  bool expected = false;
  LARGEDET_CHECK(s.active.compare_exchange_strong(expected, true),
                 "HostSyncProfiler: another profiler is already counting");
  reset();
  handle_ = at::addGlobalCallback(
      at::RecordFunctionCallback(on_enter, on_exit).scopes({at::RecordScope::FUNCTION}));
}

HostSyncProfiler::~HostSyncProfiler() {
  at::removeCallback(handle_);
  state().active.store(false);
}

HostSyncCounts HostSyncProfiler::counts() const {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  HostSyncCounts c = s.counts;
  c.ops = s.ops.load();
  return c;
}

void HostSyncProfiler::reset() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.counts = {};
  s.ops.store(0);
}

}  // namespace largedet::ops
