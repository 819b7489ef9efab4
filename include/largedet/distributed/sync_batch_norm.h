// SyncBatchNorm2d: BatchNorm2d whose training statistics span every rank of the process group, so
// that a global batch of 1K images split over many GPUs normalises as one batch
// (docs/distributed.md, "SyncBN"). Forward: one allreduce of the packed per-channel [sum, sumsq,
// count]; backward: one allreduce of [sum(dy), sum(dy * xhat)]. Count-weighted, so uneven and empty
// local batches are exact; with world size 1 (or no group) it equals torch::nn::BatchNorm2d.
// Parameter and buffer names match BatchNorm2d, so state dicts are interchangeable.
//
// Gradients of weight and bias are this rank's share (as with BatchNorm2d on the local batch
// after a loss that sums over the global batch); GradientSync averages them with the rest.
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/nn/modules/container/any.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <optional>

#include "largedet/distributed/process_group.h"

namespace largedet::distributed {

struct SyncBatchNorm2dOptions {
  /* implicit */ SyncBatchNorm2dOptions(int64_t num_features) : num_features_(num_features) {}
  TORCH_ARG(int64_t, num_features);
  TORCH_ARG(double, eps) = 1e-5;
  // nullopt: cumulative moving average, as BatchNorm2d's momentum=None.
  TORCH_ARG(std::optional<double>, momentum) = 0.1;
  TORCH_ARG(bool, affine) = true;
  TORCH_ARG(bool, track_running_stats) = true;
  // Null: sync_batch_norm_group() at the time of each forward (the "syncbn" group that init()
  // creates, else the default group; none: a world of one).
  TORCH_ARG(std::shared_ptr<ProcessGroup>, process_group) = nullptr;
};

struct SyncBatchNorm2dImpl : torch::nn::Cloneable<SyncBatchNorm2dImpl> {
  explicit SyncBatchNorm2dImpl(SyncBatchNorm2dOptions options);
  void reset() override;
  void reset_parameters();
  void reset_running_stats();
  // input: [N, C, H, W]; N may be 0 on some ranks (not on all) in training.
  at::Tensor forward(const at::Tensor& input);
  void pretty_print(std::ostream& stream) const override;

  SyncBatchNorm2dOptions options;
  at::Tensor weight, bias;                                    // [C], when affine
  at::Tensor running_mean, running_var, num_batches_tracked;  // when track_running_stats
};
TORCH_MODULE(SyncBatchNorm2d);

// For the modeling layer's norm factory (MODEL.*.NORM: SyncBN): a SyncBatchNorm2d over
// `channels` on sync_batch_norm_group(), as an AnyModule whose forward takes and returns one
// Tensor.
torch::nn::AnyModule make_sync_batch_norm(int64_t channels, double eps = 1e-5,
                                          double momentum = 0.1);

}  // namespace largedet::distributed
