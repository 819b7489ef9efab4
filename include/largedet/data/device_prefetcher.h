// DevicePrefetcher: the loader's batches on the model's device, each one's copy overlapping the
// step that uses the batch before it.
//
// On a CUDA device the copy of batch k + 1 is issued on a side stream as soon as batch k is handed
// out, so it runs on the copy engine while batch k's kernels run; taking batch k + 1 makes the
// current stream wait for that copy through an event (the host never waits for the device). From
// page-locked batches (CollateOptions::pin_memory) the copy is asynchronous; from pageable ones it
// is still correct, only not overlapped. On the CPU the batches pass through unchanged and
// nothing is read ahead.
//
// Errors keep their place: an error raised while fetching batch k + 1 ahead surfaces when batch
// k + 1 is asked for, as it would without the prefetcher.
#pragma once

#include <c10/core/Device.h>
#include <c10/core/Event.h>
#include <c10/core/Stream.h>

#include <exception>
#include <functional>
#include <optional>

#include "largedet/data/batch.h"

namespace largedet::data {

class DevicePrefetcher {
 public:
  using Source = std::function<std::optional<Batch>()>;  // nullopt: no more batches
  DevicePrefetcher(Source source, c10::Device device);

  // The next batch on the device, ready for the current stream; nullopt when the source is done.
  std::optional<Batch> next();

 private:
  void fetch_ahead();

  Source source_;
  c10::Device device_;
  std::optional<c10::Stream> side_;  // CUDA (and other stream devices) only
  bool started_ = false;
  std::optional<Batch> ahead_;
  std::optional<c10::Event> copied_;
  std::exception_ptr error_;
};

}  // namespace largedet::data
