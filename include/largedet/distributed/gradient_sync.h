// GradientSync: data-parallel gradient averaging that overlaps communication with backward
// (docs/distributed.md, "GradientSync").
//
//   GradientSync sync(*model);            // broadcasts rank 0's parameters and buffers, checks
//                                         // every rank has the same names and shapes
//   for (micro = 0; micro < k; ++micro) {
//     sync.set_sync(micro == k - 1);      // accumulation: communicate on the last micro-step only
//     loss(micro).backward();             // full buckets start their allreduce during backward
//   }
//   sync.finish();                        // waits, averages, writes .grad
//   optimizer.step();
//
// Parameters go into buckets of about bucket_size_bytes in reverse registration order (the order
// backward produces their gradients). A hook on each parameter's gradient accumulation copies the
// gradient into its bucket; when a bucket is full, it and every full bucket before it start an
// async allreduce, in bucket order so that all ranks issue the same collectives in the same order.
#pragma once

#include <torch/arg.h>
#include <torch/nn/module.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "largedet/distributed/process_group.h"

namespace largedet::distributed {

struct GradientSyncOptions {
  // DISTRIBUTED.BUCKET_SIZE_MB * 2^20.
  TORCH_ARG(int64_t, bucket_size_bytes) = 25 * 1024 * 1024;
  // Start from rank 0's parameters and buffers (off when every rank loaded the same checkpoint).
  TORCH_ARG(bool, broadcast_at_start) = true;
};

class GradientSync {
 public:
  // Synchronises module's parameters that require grad; group null: the default group.
  explicit GradientSync(torch::nn::Module& module, std::shared_ptr<ProcessGroup> group = nullptr,
                        GradientSyncOptions options = {});
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  // False for the micro-steps before the last one of a gradient-accumulation step: gradients then
  // stay local and accumulate in .grad as usual. Applies from the next backward.
  void set_sync(bool enabled);
  bool sync_enabled() const { return sync_enabled_; }
  // Starts any bucket that backward did not fill (unused parameters count as zero), waits for all,
  // and writes the mean over ranks into every parameter's .grad. Call once per optimizer step.
  void finish();

  int world_size() const;
  // Parameter names per bucket, bucket 0 first (it holds the last-registered parameters).
  std::vector<std::vector<std::string>> bucket_parameters() const;
  // Called (under the sync's lock) with "grad <name>" when a gradient is final for this step,
  // "start <bucket>" when a bucket's allreduce is issued and "finish" when finish() begins: lets
  // tests check that communication starts before backward ends.
  void set_observer(std::function<void(const std::string&)> observer);

 private:
  struct Bucket;
  struct Hook;
  void on_gradient(size_t param);
  void start_ready_buckets();  // holds mutex_
  void start(size_t bucket);
  void broadcast_and_check(torch::nn::Module& module);

  std::shared_ptr<ProcessGroup> group_;
  GradientSyncOptions options_;
  std::vector<std::string> names_;
  std::vector<at::Tensor> params_;
  std::vector<size_t> bucket_of_;  // per parameter
  std::vector<std::unique_ptr<Bucket>> buckets_;
  size_t next_to_start_ = 0;
  bool sync_enabled_ = true;
  std::mutex mutex_;
  std::function<void(const std::string&)> observer_;
};

}  // namespace largedet::distributed
