// ResNet (see backbone/resnet.h).
#include "largedet/modeling/backbone/resnet.h"

#include <torch/torch.h>

#include <algorithm>

#include "largedet/core/error.h"
#include "largedet/modeling/backbone/norm.h"

namespace largedet::modeling {

namespace {

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
                "MODEL.RESNETS",
                "set MODEL.RESNETS.NUM_GROUPS: 1 and RES2_OUT_CHANNELS: " +
                    std::to_string(options.width_per_group) + " (this recipe's WIDTH_PER_GROUP)");
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

}  // namespace largedet::modeling
