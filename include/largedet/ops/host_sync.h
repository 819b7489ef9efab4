// Counting what a GPU step would wait for. A device synchronises with the host wherever a value
// computed on it is read back: ATen's syncing ops (`_local_scalar_dense` behind item(),
// `nonzero`, `masked_select`, `unique`, ...), our own reads of device tensors, and the
// data-dependent output sizes of our kernels' wrappers. On the CPU none of these waits, so they
// are counted instead: the ATen ops through record-function callbacks, ours through the helpers
// below, which our code must use for every such read (a CPU tensor's .to(kCPU) dispatches
// nothing, so it would go unseen). A copy between host and device waits too, unless it is
// non-blocking (and, host to device, from pinned memory): on a GPU the callbacks see those copies;
// on the CPU there is nothing to copy, so the data the host sends the device goes through
// `upload`, which counts it. `largedet bench model --profile` prints the counts (docs/modeling.md,
// "Host synchronisations").
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace largedet::ops {

// `t` on the host, counted as one synchronisation under a HostSyncProfiler; `what` names the read
// in the profile.
at::Tensor read_to_host(const at::Tensor& t, const char* what);
// One data-dependent size decided on the host (a kernel wrapper allocating its output after the
// kernel ran), counted under a HostSyncProfiler.
void note_host_sync(const char* what);
// `host` (data the host made: sizes, offsets, constants) on `device` without making the device
// wait: copied from pinned memory without blocking on a GPU, `host` itself on the CPU. Counted as
// an upload (not a sync) under a HostSyncProfiler, on every device, so that a CPU profile shows
// what a GPU step would send.
at::Tensor upload(const at::Tensor& host, const at::Device& device, const char* what);
// Whether copying a tensor from `src` (`src_pinned`: page-locked host memory) to `dst` makes the
// host wait for the device. Host to device waits unless the source is pinned and the copy
// non-blocking (a blocking copy synchronises the stream; a pageable one is staged by the driver
// and synchronised); device to host waits unless non-blocking; host to host and device to device
// never.
bool copy_waits_for_device(const at::Device& src, bool src_pinned, const at::Device& dst,
                           bool non_blocking);

struct HostSyncCounts {
  int64_t ops = 0;    // ATen ops dispatched by the code itself (not the ones nested inside them)
  int64_t syncs = 0;  // host synchronisations
  std::map<std::string, int64_t> syncs_by_name;
  int64_t uploads = 0;  // tensors sent to the device through `upload`
  std::map<std::string, int64_t> uploads_by_name;
};

// Counts, on every thread, while it lives; one profiler at a time.
class HostSyncProfiler {
 public:
  HostSyncProfiler();
  ~HostSyncProfiler();
  HostSyncProfiler(const HostSyncProfiler&) = delete;
  HostSyncProfiler& operator=(const HostSyncProfiler&) = delete;

  HostSyncCounts counts() const;
  void reset();

 private:
  uint64_t handle_;
};

}  // namespace largedet::ops
