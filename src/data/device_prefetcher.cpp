#include "largedet/data/device_prefetcher.h"

#include <c10/core/StreamGuard.h>
#include <c10/core/impl/VirtualGuardImpl.h>

#include <utility>

namespace largedet::data {

DevicePrefetcher::DevicePrefetcher(Source source, c10::Device device)
    : source_(std::move(source)), device_(device) {
  if (!device_.is_cpu()) {
    if (!device_.has_index()) device_ = c10::impl::VirtualGuardImpl(device_.type()).getDevice();
    side_ = c10::impl::VirtualGuardImpl(device_.type()).getStreamFromGlobalPool(device_);
  }
}

void DevicePrefetcher::fetch_ahead() {
  try {
    ahead_ = source_();
    if (!ahead_) return;
    c10::StreamGuard on_side(*side_);
    *ahead_ = ahead_->to(device_, /*non_blocking=*/true);
    copied_.emplace(device_.type());
    copied_->record(*side_);
  } catch (...) {
    ahead_.reset();
    error_ = std::current_exception();
  }
}

std::optional<Batch> DevicePrefetcher::next() {
  if (!side_) return source_();
  if (!started_) {
    started_ = true;
    fetch_ahead();
  }
  if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  std::optional<Batch> batch = std::exchange(ahead_, std::nullopt);
  if (!batch) return batch;
  const c10::Stream current = c10::impl::VirtualGuardImpl(device_.type()).getStream(device_);
  copied_->block(current);
  // The memory was allocated on the side stream: without this the allocator could hand it to the
  // next copy while the current stream still reads it.
  const auto used_here = [&](at::Tensor& t) { t.record_stream(current); };
  used_here(batch->images);
  for (auto& t : batch->targets) t.for_each_tensor(used_here);
  fetch_ahead();
  return batch;
}

}  // namespace largedet::data
