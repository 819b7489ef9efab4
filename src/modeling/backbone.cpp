// Norm factory, ResNet and FPN (see backbone.h).
#include "largedet/modeling/backbone.h"

#include <torch/torch.h>

#include <cmath>
#include <map>
#include <mutex>

#include "largedet/core/error.h"
#include "largedet/distributed/sync_batch_norm.h"

namespace largedet::modeling {

namespace F = torch::nn::functional;

// ---------------------------------------------------------------------------------------------
// Norms

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
  std::lock_guard<std::mutex> lock(registry.mutex);
  auto it = registry.factories.find(name);
  if (it == registry.factories.end()) {
    std::string known;
    for (const auto& [n, f] : registry.factories) known += (known.empty() ? "" : ", ") + n;
    throw Error("unknown norm '" + name + "'", "MODEL.*.NORM",
                "use one of: " + known + " (or \"\" for none)");
  }
  return it->second(channels);
}

void register_norm(const std::string& name, NormFactory factory) {
  LARGEDET_CHECK(!name.empty(), "register_norm: empty name");
  auto& registry = norm_registry();
  std::lock_guard<std::mutex> lock(registry.mutex);
  registry.factories[name] = std::move(factory);
}

// ---------------------------------------------------------------------------------------------
// ResNet

namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad,
                       bool bias = false) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(bias));
}

torch::nn::AnyModule norm_module(torch::nn::Module& parent, const std::string& name,
                                 const std::string& norm, int64_t channels) {
  auto m = make_norm(norm, channels);
  LARGEDET_CHECK(!m.is_empty(), "ResNet needs a norm (MODEL.RESNETS.NORM is empty)");
  parent.register_module(name, m.ptr());
  return m;
}

}  // namespace

ResNetBlockImpl::ResNetBlockImpl(const ResNetBlockOptions& o) : bottleneck(o.bottleneck) {
  if (bottleneck) {
    const int64_t stride1 = o.stride_in_1x1 ? o.stride : 1;
    conv1 = register_module("conv1", conv(o.in_channels, o.width, 1, stride1, 0));
    bn1 = norm_module(*this, "bn1", o.norm, o.width);
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(o.width, o.width, 3)
                                                           .stride(o.stride / stride1)
                                                           .padding(1)
                                                           .groups(o.groups)
                                                           .bias(false)));
    bn2 = norm_module(*this, "bn2", o.norm, o.width);
    conv3 = register_module("conv3", conv(o.width, o.out_channels, 1, 1, 0));
    bn3 = norm_module(*this, "bn3", o.norm, o.out_channels);
  } else {
    conv1 = register_module("conv1", conv(o.in_channels, o.out_channels, 3, o.stride, 1));
    bn1 = norm_module(*this, "bn1", o.norm, o.out_channels);
    conv2 = register_module("conv2", conv(o.out_channels, o.out_channels, 3, 1, 1));
    bn2 = norm_module(*this, "bn2", o.norm, o.out_channels);
  }
  if (o.stride != 1 || o.in_channels != o.out_channels) {
    downsample = torch::nn::Sequential();
    downsample->push_back(conv(o.in_channels, o.out_channels, 1, o.stride, 0));
    downsample->push_back(make_norm(o.norm, o.out_channels));
    register_module("downsample", downsample);
  }
}

torch::Tensor ResNetBlockImpl::forward(torch::Tensor x) {
  auto identity = downsample ? downsample->forward(x) : x;
  auto out = torch::relu(bn1.forward(conv1->forward(x)));
  if (bottleneck) {
    out = torch::relu(bn2.forward(conv2->forward(out)));
    out = bn3.forward(conv3->forward(out));
  } else {
    out = bn2.forward(conv2->forward(out));
  }
  return torch::relu(out + identity);
}

ResNetImpl::ResNetImpl(ResNetOptions opts) : options(std::move(opts)) {
  std::vector<int64_t> blocks;
  bool bottleneck = true;
  switch (options.depth) {
    case 18:
      blocks = {2, 2, 2, 2};
      bottleneck = false;
      break;
    case 34:
      blocks = {3, 4, 6, 3};
      bottleneck = false;
      break;
    case 50:
      blocks = {3, 4, 6, 3};
      break;
    case 101:
      blocks = {3, 4, 23, 3};
      break;
    case 152:
      blocks = {3, 8, 36, 3};
      break;
    default:
      throw Error("unsupported ResNet depth " + std::to_string(options.depth),
                  "MODEL.RESNETS.DEPTH", "use 18, 34, 50, 101 or 152");
  }
  LARGEDET_CHECK(options.freeze_at >= 0 && options.freeze_at <= 5, "ResNet: freeze_at ",
                 options.freeze_at, " outside [0, 5] (MODEL.BACKBONE.FREEZE_AT)");
  for (auto l : options.returned_layers)
    LARGEDET_CHECK(l >= 1 && l <= 4, "ResNet: returned layer ", l, " outside [1, 4]");
  const int64_t res2_out =
      options.res2_out_channels > 0 ? options.res2_out_channels : (bottleneck ? 256 : 64);
  const int64_t res2_width = options.num_groups * options.width_per_group;
  LARGEDET_CHECK(options.stem_out_channels > 0 && res2_width > 0 && res2_out > 0,
                 "ResNet: widths must be positive (MODEL.RESNETS.*)");
  if (!bottleneck && (options.num_groups != 1 || res2_out != res2_width))
    throw Error("ResNet-" + std::to_string(options.depth) + " has basic blocks: they need " +
                    "MODEL.RESNETS.NUM_GROUPS 1 and RES2_OUT_CHANNELS equal to WIDTH_PER_GROUP " +
                    "(got " + std::to_string(options.num_groups) + ", " + std::to_string(res2_out) +
                    " and " + std::to_string(options.width_per_group) + ")",
                "MODEL.RESNETS", "for ResNet-18/34 set MODEL.RESNETS.RES2_OUT_CHANNELS: 64");
  int64_t in_channels = options.stem_out_channels;
  conv1 = register_module("conv1", conv(3, in_channels, 7, 2, 3));
  bn1 = norm_module(*this, "bn1", options.norm, in_channels);
  int64_t last = *std::max_element(options.returned_layers.begin(), options.returned_layers.end());
  for (int64_t i = 0; i < last; ++i) {
    torch::nn::Sequential layer;
    for (int64_t b = 0; b < blocks[i]; ++b) {
      ResNetBlockOptions block;
      block.bottleneck = bottleneck;
      block.in_channels = in_channels;
      block.width = res2_width << i;
      block.out_channels = res2_out << i;
      block.stride = (b == 0 && i > 0) ? 2 : 1;
      block.groups = options.num_groups;
      block.stride_in_1x1 = options.stride_in_1x1;
      block.norm = options.norm;
      layer->push_back(ResNetBlock(block));
      in_channels = block.out_channels;
    }
    layers.push_back(register_module("layer" + std::to_string(i + 1), layer));
    stage_channels_.push_back(in_channels);
  }
  // torchvision's initialisation: He (fan_out) for convs, norms at identity.
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* c = m->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(c->weight, 0.0, torch::kFanOut, torch::kReLU);
    }
  }
  freeze(options.freeze_at);
}

std::vector<int64_t> ResNetImpl::out_channels() const {
  std::vector<int64_t> out;
  for (auto l : options.returned_layers) out.push_back(stage_channels_[l - 1]);
  return out;
}

void ResNetImpl::freeze(int64_t freeze_at) {
  std::vector<std::string> frozen;
  if (freeze_at >= 1) frozen = {"conv1.", "bn1."};
  for (int64_t i = 1; i < freeze_at && i <= 4; ++i)
    frozen.push_back("layer" + std::to_string(i) + ".");
  for (auto& p : named_parameters()) {
    bool freeze = false;
    for (const auto& f : frozen) freeze = freeze || p.key().rfind(f, 0) == 0;
    if (freeze) p.value().set_requires_grad(false);
  }
}

std::vector<torch::Tensor> ResNetImpl::forward(torch::Tensor x) {
  x = torch::relu(bn1.forward(conv1->forward(x)));
  x = torch::max_pool2d(x, {3, 3}, {2, 2}, {1, 1});
  std::vector<torch::Tensor> stages;
  for (auto& layer : layers) {
    x = layer->forward(x);
    stages.push_back(x);
  }
  std::vector<torch::Tensor> out;
  for (auto l : options.returned_layers) out.push_back(stages[l - 1]);
  return out;
}

// ---------------------------------------------------------------------------------------------
// FPN

namespace {

// torchvision's Conv2dNormActivation without activation: Sequential(conv[, norm]).
torch::nn::Sequential conv_norm(int64_t in, int64_t out, int64_t k, const std::string& norm) {
  torch::nn::Sequential seq;
  auto c = conv(in, out, k, 1, k / 2, /*bias=*/norm.empty());
  torch::nn::init::kaiming_uniform_(c->weight, 1.0);
  if (c->bias.defined()) torch::nn::init::zeros_(c->bias);
  seq->push_back(c);
  if (!norm.empty()) seq->push_back(make_norm(norm, out));
  return seq;
}

}  // namespace

FPNImpl::FPNImpl(FPNOptions opts) : options(std::move(opts)) {
  LARGEDET_CHECK(!options.in_channels.empty(), "FPN: no input levels");
  for (auto c : options.in_channels) {
    LARGEDET_CHECK(c > 0, "FPN: input level with ", c, " channels");
    inner_blocks->push_back(conv_norm(c, options.out_channels, 1, options.norm));
    layer_blocks->push_back(conv_norm(options.out_channels, options.out_channels, 3, options.norm));
  }
  register_module("inner_blocks", inner_blocks);
  register_module("layer_blocks", layer_blocks);
  if (options.extra == FPNExtra::kP6P7FromP5 || options.extra == FPNExtra::kP6P7FromC5) {
    int64_t in =
        options.extra == FPNExtra::kP6P7FromP5 ? options.out_channels : options.in_channels.back();
    auto extra = std::make_shared<torch::nn::Module>();
    p6 = extra->register_module("p6", conv(in, options.out_channels, 3, 2, 1, true));
    p7 = extra->register_module("p7",
                                conv(options.out_channels, options.out_channels, 3, 2, 1, true));
    for (auto* c : {&p6, &p7}) {
      torch::nn::init::kaiming_uniform_((*c)->weight, 1.0);
      torch::nn::init::zeros_((*c)->bias);
    }
    register_module("extra_blocks", extra);
  }
}

std::vector<torch::Tensor> FPNImpl::forward(const std::vector<torch::Tensor>& x) {
  int64_t n = static_cast<int64_t>(x.size());
  LARGEDET_CHECK(n == static_cast<int64_t>(options.in_channels.size()), "FPN: expected ",
                 options.in_channels.size(), " levels, got ", n);
  std::vector<torch::Tensor> results(n);
  auto last_inner = inner_blocks[n - 1]->as<torch::nn::Sequential>()->forward(x[n - 1]);
  results[n - 1] = layer_blocks[n - 1]->as<torch::nn::Sequential>()->forward(last_inner);
  for (int64_t i = n - 2; i >= 0; --i) {
    auto lateral = inner_blocks[i]->as<torch::nn::Sequential>()->forward(x[i]);
    auto top_down = at::upsample_nearest2d(last_inner, {lateral.size(2), lateral.size(3)});
    last_inner = lateral + top_down;
    results[i] = layer_blocks[i]->as<torch::nn::Sequential>()->forward(last_inner);
  }
  switch (options.extra) {
    case FPNExtra::kNone:
      break;
    case FPNExtra::kMaxPool:
      results.push_back(torch::max_pool2d(results.back(), {1, 1}, {2, 2}, {0, 0}));
      break;
    case FPNExtra::kP6P7FromP5:
    case FPNExtra::kP6P7FromC5: {
      auto src = options.extra == FPNExtra::kP6P7FromP5 ? results.back() : x.back();
      auto r6 = p6->forward(src);
      auto r7 = p7->forward(torch::relu(r6));
      results.push_back(r6);
      results.push_back(r7);
      break;
    }
  }
  return results;
}

BackboneWithFPNImpl::BackboneWithFPNImpl(ResNetOptions resnet, int64_t out_channels,
                                         const std::string& fpn_norm, FPNExtra extra) {
  body = register_module("body", ResNet(std::move(resnet)));
  FPNOptions fo;
  fo.in_channels = body->out_channels();
  fo.out_channels = out_channels;
  fo.norm = fpn_norm;
  fo.extra = extra;
  fpn = register_module("fpn", FPN(fo));
}

std::vector<torch::Tensor> BackboneWithFPNImpl::forward(const torch::Tensor& images) {
  return fpn->forward(body->forward(images));
}

}  // namespace largedet::modeling
