// Backbones of the detectors: the norm factory (FrozenBN, BN, GN and any registered norm such as
// the distributed layer's SyncBN), ResNet-18/34/50/101 in torchvision's layout (stride on the 3x3
// conv, parameter names as torchvision's so its checkpoints load by name) and the FPN.
#pragma once

#include <torch/nn.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace largedet::modeling {

// ---------------------------------------------------------------------------------------------
// Norms

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
std::vector<std::string> registered_norms();

// ---------------------------------------------------------------------------------------------
// ResNet

struct ResNetOptions {
  int64_t depth = 50;  // 18, 34, 50, 101 (152 too)
  std::string norm = "FrozenBN";
  // Stages frozen (requires_grad false), detectron2's meaning: 0 none, 1 the stem (conv1, bn1),
  // 2 stem + layer1, ... 5 everything. torchvision's trainable_layers = 5 - freeze_at.
  int64_t freeze_at = 2;
  // Scales every stage's width (stem 64, planes 64..512), for narrow test and demo networks.
  double width_multiplier = 1.0;
  // Stages whose outputs forward() returns, 1 = layer1 (stride 4) .. 4 = layer4 (stride 32).
  std::vector<int64_t> returned_layers = {1, 2, 3, 4};
};

// torchvision's Bottleneck (expansion 4) or BasicBlock (expansion 1).
struct ResNetBlockImpl : torch::nn::Module {
  ResNetBlockImpl(bool bottleneck, int64_t inplanes, int64_t planes, int64_t stride,
                  const std::string& norm);
  torch::Tensor forward(torch::Tensor x);

  bool bottleneck;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::AnyModule bn1, bn2, bn3;
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(ResNetBlock);

struct ResNetImpl : torch::nn::Module {
  explicit ResNetImpl(ResNetOptions options);
  // The outputs of options.returned_layers, finest first.
  std::vector<torch::Tensor> forward(torch::Tensor x);
  // Output channels of layer1..layer4.
  std::vector<int64_t> stage_channels() const { return stage_channels_; }
  // The channels of each returned stage.
  std::vector<int64_t> out_channels() const;
  // Sets requires_grad false on the frozen stages (called by the constructor; call it again after
  // replacing parameters).
  void freeze(int64_t freeze_at);

  ResNetOptions options;
  torch::nn::Conv2d conv1{nullptr};
  torch::nn::AnyModule bn1;
  std::vector<torch::nn::Sequential> layers;  // layer1..layer4

 private:
  std::vector<int64_t> stage_channels_;
};
TORCH_MODULE(ResNet);

// ---------------------------------------------------------------------------------------------
// FPN

enum class FPNExtra {
  kNone,
  kMaxPool,     // R-CNN: P6 = max_pool(P5, 1, stride 2) ("pool")
  kP6P7FromP5,  // RetinaNet (torchvision): P6 = conv(P5), P7 = conv(relu(P6))
  kP6P7FromC5,  // RetinaNet (paper, detectron2): P6 = conv(C5)
};

struct FPNOptions {
  std::vector<int64_t> in_channels;  // of each input level, finest first
  int64_t out_channels = 256;
  std::string norm;  // "" (torchvision) or a make_norm() name
  FPNExtra extra = FPNExtra::kMaxPool;
};

// torchvision's FeaturePyramidNetwork: lateral 1x1 convs (inner_blocks.i.0), nearest top-down
// upsampling to the lateral's size, 3x3 output convs (layer_blocks.i.0), then the extra levels.
struct FPNImpl : torch::nn::Module {
  explicit FPNImpl(FPNOptions options);
  // features: the backbone's levels finest first; returns P levels finest first, extras last.
  std::vector<torch::Tensor> forward(const std::vector<torch::Tensor>& features);

  FPNOptions options;
  torch::nn::ModuleList inner_blocks, layer_blocks;
  torch::nn::Conv2d p6{nullptr}, p7{nullptr};  // registered under extra_blocks
};
TORCH_MODULE(FPN);

// torchvision's BackboneWithFPN: `body` (ResNet) and `fpn`.
struct BackboneWithFPNImpl : torch::nn::Module {
  BackboneWithFPNImpl(ResNetOptions resnet, int64_t out_channels, const std::string& fpn_norm,
                      FPNExtra extra);
  std::vector<torch::Tensor> forward(const torch::Tensor& images);
  int64_t out_channels() const { return fpn->options.out_channels; }

  ResNet body{nullptr};
  FPN fpn{nullptr};
};
TORCH_MODULE(BackboneWithFPN);

}  // namespace largedet::modeling
