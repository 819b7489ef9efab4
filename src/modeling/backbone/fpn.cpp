// FPN and BackboneWithFPN (see backbone/fpn.h).
#include "largedet/modeling/backbone/fpn.h"

#include <torch/torch.h>

#include "largedet/core/error.h"
#include "largedet/modeling/backbone/norm.h"

namespace largedet::modeling {

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
