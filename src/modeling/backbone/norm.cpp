// Norm factory, FrozenBatchNorm2d and the heads' ConvNormReLU (see backbone/norm.h).
#include "largedet/modeling/backbone/norm.h"

#include <torch/torch.h>

#include <map>
#include <mutex>

#include "largedet/core/error.h"
#include "largedet/distributed/sync_batch_norm.h"

namespace largedet::modeling {

FrozenBatchNorm2dImpl::FrozenBatchNorm2dImpl(int64_t num_features, double eps)
    : num_features(num_features), eps(eps) {
  weight = register_buffer("weight", torch::ones({num_features}));
  bias = register_buffer("bias", torch::zeros({num_features}));
  running_mean = register_buffer("running_mean", torch::zeros({num_features}));
  running_var = register_buffer("running_var", torch::ones({num_features}));
}

torch::Tensor FrozenBatchNorm2dImpl::forward(const torch::Tensor& x) {
  // The same composition as torchvision, so that results agree to the last bit or nearly. The
  // affine is computed in float32 and the result returned in the activations' dtype: under AMP,
  // float32 buffers would otherwise promote every activation after a norm, so that the ReLUs,
  // residual adds and FPN ran in float32 and autocast re-cast each conv input. (Rounding the scale
  // and shift to bfloat16 instead loses more: docs/modeling.md, "Precision".)
  auto scale = weight * (running_var + eps).rsqrt();
  auto shift = bias - running_mean * scale;
  return (x * scale.reshape({1, -1, 1, 1}) + shift.reshape({1, -1, 1, 1})).to(x.scalar_type());
}

void FrozenBatchNorm2dImpl::pretty_print(std::ostream& stream) const {
  stream << "FrozenBatchNorm2d(" << num_features << ", eps=" << eps << ")";
}

namespace {

struct NormRegistry {
  std::mutex mutex;
  std::map<std::string, NormFactory> factories;
};

NormRegistry& norm_registry() {
  // Built-ins are installed here rather than by static initialisers in other translation units,
  // which a static library link could drop.
  static NormRegistry* registry = [] {
    auto* r = new NormRegistry;
    r->factories["FrozenBN"] = [](int64_t c) { return torch::nn::AnyModule(FrozenBatchNorm2d(c)); };
    r->factories["BN"] = [](int64_t c) { return torch::nn::AnyModule(torch::nn::BatchNorm2d(c)); };
    r->factories["GN"] = [](int64_t c) {
      LARGEDET_CHECK(c % 32 == 0, "GN norm: ", c, " channels are not divisible into 32 groups");
      return torch::nn::AnyModule(torch::nn::GroupNorm(torch::nn::GroupNormOptions(32, c)));
    };
    r->factories["SyncBN"] = [](int64_t c) { return distributed::make_sync_batch_norm(c); };
    return r;
  }();
  return *registry;
}

}  // namespace

torch::nn::AnyModule make_norm(const std::string& name, int64_t channels) {
  if (name.empty()) return {};
  auto& registry = norm_registry();
  NormFactory factory;
  {
    std::lock_guard<std::mutex> lock(registry.mutex);
    auto it = registry.factories.find(name);
    if (it == registry.factories.end()) {
      std::string known;
      for (const auto& [n, f] : registry.factories) known += (known.empty() ? "" : ", ") + n;
      throw Error("unknown norm '" + name + "'", "MODEL.*.NORM",
                  "use one of: " + known + " (or \"\" for none)");
    }
    factory = it->second;
  }
  // Outside the lock: a factory may build its norm from another registered one.
  return factory(channels);
}

void register_norm(const std::string& name, NormFactory factory) {
  LARGEDET_CHECK(!name.empty(), "register_norm: empty name");
  auto& registry = norm_registry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  registry.factories[name] = std::move(factory);
}

ConvNormReLUImpl::ConvNormReLUImpl(int64_t in, int64_t out, const std::string& norm_name) {
  conv = register_module(
      "0",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1).bias(norm_name.empty())));
  torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut, torch::kReLU);
  if (conv->bias.defined()) torch::nn::init::zeros_(conv->bias);
  if (!norm_name.empty()) {
    norm = make_norm(norm_name, out);
    register_module("1", norm.ptr());
  }
}

torch::Tensor ConvNormReLUImpl::forward(const torch::Tensor& x) {
  auto y = conv->forward(x);
  return torch::relu(norm.is_empty() ? y : norm.forward(y));
}

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, bool bias) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(bias));
}

}  // namespace largedet::modeling
