#include "largedet/ops/host_sync.h"

#include <ATen/record_function.h>

#include <atomic>
#include <cstring>
#include <mutex>
#include <set>

#include "largedet/core/error.h"

namespace largedet::ops {
namespace {

struct State {
  std::atomic<bool> active{false};
  std::atomic<int64_t> ops{0};
  std::mutex mutex;
  HostSyncCounts counts;  // all but ops, under the mutex
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

void count_upload(const char* what) {
  State& s = state();
  if (!s.active.load()) return;
  std::lock_guard<std::mutex> lock(s.mutex);
  ++s.counts.uploads;
  ++s.counts.uploads_by_name[what];
}

// Per thread: how deep in dispatched ops, in syncing ops and in copies the thread is (ops nested
// in others, a nonzero inside masked_select, the copy_ inside _to_copy, are not counted again).
thread_local int op_depth = 0;
thread_local int sync_depth = 0;
thread_local int copy_depth = 0;

bool is_copy_op(const char* name) {
  return std::strcmp(name, "aten::_to_copy") == 0 || std::strcmp(name, "aten::copy_") == 0;
}

// Whether the copy `fn` waits for the device. Its schema's arguments: `_to_copy(self, dtype,
// layout, device, pin_memory, non_blocking, memory_format)`, `copy_(self, src, non_blocking)`.
bool copy_waits(const at::RecordFunction& fn) {
  const auto inputs = fn.inputs();
  const bool is_copy_ = std::strcmp(fn.name(), "aten::copy_") == 0;
  const size_t src_at = is_copy_ ? 1 : 0, non_blocking_at = is_copy_ ? 2 : 5;
  if (inputs.size() <= non_blocking_at || !inputs[src_at].isTensor()) return false;
  const auto& src = inputs[src_at].toTensor();
  at::Device dst = src.device();
  if (is_copy_ && inputs[0].isTensor()) dst = inputs[0].toTensor().device();
  if (!is_copy_ && inputs[3].isDevice()) dst = inputs[3].toDevice();
  if (src.is_cpu() == dst.is_cpu()) return false;  // before is_pinned, which dispatches an op
  const bool non_blocking = inputs[non_blocking_at].isBool() && inputs[non_blocking_at].toBool();
  return copy_waits_for_device(src.device(), src.is_cpu() && src.is_pinned(), dst, non_blocking);
}

std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& fn) {
  if (op_depth++ == 0) state().ops.fetch_add(1);
  if (is_syncing_op(fn.name()) && sync_depth++ == 0) count_sync("", fn.name());
  if (is_copy_op(fn.name()) && copy_depth++ == 0 && copy_waits(fn))
    count_sync("", "aten copy between host and device");
  return nullptr;
}

void on_exit(const at::RecordFunction& fn, at::ObserverContext*) {
  --op_depth;
  if (is_syncing_op(fn.name())) --sync_depth;
  if (is_copy_op(fn.name())) --copy_depth;
}

// Marks the calling thread as inside a copy that is already counted (or free), so that the copy
// ops it dispatches are not counted again.
struct CountedCopy {
  CountedCopy() { ++copy_depth; }
  ~CountedCopy() { --copy_depth; }
  CountedCopy(const CountedCopy&) = delete;
  CountedCopy& operator=(const CountedCopy&) = delete;
};

}  // namespace

at::Tensor read_to_host(const at::Tensor& t, const char* what) {
  count_sync("largedet::", what);
  CountedCopy counted;
  return t.to(at::kCPU);
}

void note_host_sync(const char* what) { count_sync("largedet::", what); }

at::Tensor upload(const at::Tensor& host, const at::Device& device, const char* what) {
  LARGEDET_CHECK(host.is_cpu(), "upload (", what, "): the tensor is on ", host.device(),
                 ", not on the host");
  count_upload(what);
  if (device.is_cpu()) return host;
  const auto pinned = host.is_pinned() ? host : host.pin_memory();
  return pinned.to(device, /*non_blocking=*/true);
}

bool copy_waits_for_device(const at::Device& src, bool src_pinned, const at::Device& dst,
                           bool non_blocking) {
  if (src.is_cpu() == dst.is_cpu()) return false;
  if (src.is_cpu()) return !(src_pinned && non_blocking);
  return !non_blocking;
}

HostSyncProfiler::HostSyncProfiler() {
  State& s = state();
  bool expected = false;
  LARGEDET_CHECK(s.active.compare_exchange_strong(expected, true),
                 "HostSyncProfiler: another profiler is already counting");
  reset();
  handle_ = at::addGlobalCallback(at::RecordFunctionCallback(on_enter, on_exit)
                                      .needsInputs(true)
                                      .scopes({at::RecordScope::FUNCTION}));
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
