// The norm factory of the backbones and heads (MODEL.*.NORM): FrozenBN, BN, GN and any registered
// norm such as the distributed layer's SyncBN; and the heads' conv-norm-ReLU block.
#pragma once

#include <torch/nn.h>

#include <functional>
#include <string>

namespace largedet::modeling {

// BatchNorm2d with fixed statistics and affine parameters, all buffers (torchvision's
// misc.FrozenBatchNorm2d): y = x * w / sqrt(rv + eps) + (b - rm * w / sqrt(rv + eps)).
struct FrozenBatchNorm2dImpl : torch::nn::Module {
  explicit FrozenBatchNorm2dImpl(int64_t num_features, double eps = 1e-5);
  torch::Tensor forward(const torch::Tensor& x);
  void pretty_print(std::ostream& stream) const override;

  int64_t num_features;
  double eps;
  torch::Tensor weight, bias, running_mean, running_var;
};
TORCH_MODULE(FrozenBatchNorm2d);

// A norm over `channels` channels: a module whose forward takes and returns one tensor.
using NormFactory = std::function<torch::nn::AnyModule(int64_t channels)>;

// Built in: "FrozenBN", "BN" (BatchNorm2d), "GN" (GroupNorm, 32 groups), "SyncBN" (the distributed
// layer's SyncBatchNorm2d on the default group). "" means no norm: returns an empty AnyModule.
// Unknown names throw largedet::Error listing the registered ones.
torch::nn::AnyModule make_norm(const std::string& name, int64_t channels);
// Adds or replaces a norm by name (e.g. a test's norm, or another synchronised BN).
void register_norm(const std::string& name, NormFactory factory);

// torchvision's Conv2dNormActivation as its ROI heads use it: a 3x3 conv (children "0"), the norm
// `norm` when not "" ("1", and then the conv has no bias), a ReLU; He (fan_out) initialised. A
// module of its own because a Sequential cannot hold a Sequential.
// A k x k convolution, without bias unless asked (a norm follows most of the backbone's).
torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad,
                       bool bias = false);

struct ConvNormReLUImpl : torch::nn::Module {
  ConvNormReLUImpl(int64_t in_channels, int64_t out_channels, const std::string& norm);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Conv2d conv{nullptr};
  torch::nn::AnyModule norm;
};
TORCH_MODULE(ConvNormReLU);

}  // namespace largedet::modeling
