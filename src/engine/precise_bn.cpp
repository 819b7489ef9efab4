#include "largedet/engine/precise_bn.h"

#include <torch/torch.h>

#include <optional>
#include <vector>

#include "largedet/core/error.h"
#include "largedet/distributed/sync_batch_norm.h"

namespace largedet::engine {
namespace {

// One BN layer: its momentum (an option that forward reads at every call), running buffers, and
// the averages being accumulated.
struct Layer {
  Layer(std::optional<double>* m, torch::Tensor mean_buffer, torch::Tensor var_buffer,
        torch::Tensor tracked)
      : momentum(m),
        running_mean(std::move(mean_buffer)),
        running_var(std::move(var_buffer)),
        num_batches_tracked(std::move(tracked)) {}
  std::optional<double>* momentum;
  torch::Tensor running_mean, running_var, num_batches_tracked;
  std::optional<double> saved_momentum;
  torch::Tensor saved_tracked, mean, var;
};

void add_if_bn(torch::nn::Module& module, std::vector<Layer>& layers) {
  if (auto* bn = module.as<torch::nn::BatchNorm2d>()) {
    if (bn->options.track_running_stats())
      layers.emplace_back(&bn->options.momentum(), bn->running_mean, bn->running_var,
                          bn->num_batches_tracked);
  } else if (auto* sync = module.as<distributed::SyncBatchNorm2d>()) {
    if (sync->options.track_running_stats())
      layers.emplace_back(&sync->options.momentum(), sync->running_mean, sync->running_var,
                          sync->num_batches_tracked);
  }
}

// The model itself is visited by reference: modules(true) needs it held by a shared_ptr.
std::vector<Layer> bn_layers(torch::nn::Module& model) {
  std::vector<Layer> layers;
  add_if_bn(model, layers);
  for (const auto& module : model.modules(/*include_self=*/false)) add_if_bn(*module, layers);
  return layers;
}

}  // namespace

int64_t update_bn_stats(torch::nn::Module& model, const std::function<void(int64_t)>& forward_batch,
                        int64_t num_batches) {
  LARGEDET_CHECK(num_batches > 0, "precise BN needs at least one batch (TEST.PRECISE_BN.NUM_ITER)");
  std::vector<Layer> layers = bn_layers(model);
  if (layers.empty()) return 0;
  LARGEDET_CHECK(model.is_training(), "precise BN runs the model in training mode");
  torch::NoGradGuard no_grad;
  for (auto& layer : layers) {
    // Momentum 1: after each forward the running buffers hold that batch's statistics alone.
    layer.saved_momentum = *layer.momentum;
    *layer.momentum = 1.0;
    layer.saved_tracked = layer.num_batches_tracked.clone();
    layer.mean = torch::zeros_like(layer.running_mean, torch::kDouble);
    layer.var = torch::zeros_like(layer.running_var, torch::kDouble);
  }
  try {
    for (int64_t i = 0; i < num_batches; ++i) {
      forward_batch(i);
      for (auto& layer : layers) {
        layer.mean += layer.running_mean.to(torch::kDouble);
        layer.var += layer.running_var.to(torch::kDouble);
      }
    }
  } catch (...) {
    for (auto& layer : layers) *layer.momentum = layer.saved_momentum;
    throw;
  }
  for (auto& layer : layers) {
    *layer.momentum = layer.saved_momentum;
    layer.running_mean.copy_(layer.mean / static_cast<double>(num_batches));
    layer.running_var.copy_(layer.var / static_cast<double>(num_batches));
    layer.num_batches_tracked.copy_(layer.saved_tracked);
  }
  return static_cast<int64_t>(layers.size());
}

}  // namespace largedet::engine
