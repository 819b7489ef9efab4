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

// ---------------------------------------------------------------------------------------------
// ResNet

struct ResNetOptions {
  int64_t depth = 50;  // 18, 34, 50, 101 (152 too)
  std::string norm = "FrozenBN";
  // Stages frozen (requires_grad false), detectron2's meaning: 0 none, 1 the stem (conv1, bn1),
  // 2 stem + layer1, ... 5 everything. torchvision's trainable_layers = 5 - freeze_at.
  int64_t freeze_at = 2;
  // Widths in detectron2's terms (MODEL.RESNETS.*): res2's 3x3 conv has num_groups x
  // width_per_group channels and res2 outputs res2_out_channels (0: 256 for bottlenecks, 64 for
  // basic blocks); each later stage doubles both. ResNeXt-50 32x4d is num_groups 32,
  // width_per_group 4. Narrow test and demo networks shrink all three with the stem.
  int64_t stem_out_channels = 64;
  int64_t res2_out_channels = 0;
  int64_t width_per_group = 64;
  int64_t num_groups = 1;
  // The bottleneck's stride on its 1x1 conv (MSRA / detectron2 weights) instead of its 3x3
  // (torchvision's "ResNet v1.5", the default).
  bool stride_in_1x1 = false;
  // Stages whose outputs forward() returns, 1 = layer1 (stride 4) .. 4 = layer4 (stride 32).
  std::vector<int64_t> returned_layers = {1, 2, 3, 4};
};

// torchvision's Bottleneck (`width` channels inside, groups on the 3x3) or BasicBlock.
struct ResNetBlockOptions {
  bool bottleneck = true;
  int64_t in_channels = 0, width = 0, out_channels = 0, stride = 1, groups = 1;
  bool stride_in_1x1 = false;
  std::string norm = "FrozenBN";
};

struct ResNetBlockImpl : torch::nn::Module {
  explicit ResNetBlockImpl(const ResNetBlockOptions& options);
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
