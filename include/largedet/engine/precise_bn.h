// Precise BN (detectron2's TEST.PRECISE_BN, after fvcore's update_bn_stats): the running
// statistics that BatchNorm keeps during training are an exponential average over batches seen
// with older weights; before an evaluation they are recomputed with the current weights as the
// plain average, over `num_batches` batches, of each batch's mean and (unbiased) variance.
#pragma once

#include <torch/nn/module.h>

#include <cstdint>
#include <functional>

namespace largedet::engine {

// Runs `forward_batch(i)` for i = 0 .. num_batches - 1 (each a training-mode forward of one
// batch, under no_grad) and sets the running_mean and running_var of every torch::nn::BatchNorm2d
// and distributed::SyncBatchNorm2d in `model` that tracks running statistics to the average of
// those batches' statistics; their momentum and num_batches_tracked are left as they were.
// Returns how many layers it updated (0: it ran no forward).
int64_t update_bn_stats(torch::nn::Module& model, const std::function<void(int64_t)>& forward_batch,
                        int64_t num_batches);

}  // namespace largedet::engine
