// torchvision's FeaturePyramidNetwork and BackboneWithFPN (ResNet body + FPN), with the extra
// levels of R-CNN (P6 by max-pooling) and RetinaNet (P6, P7 by convs).
#pragma once

#include <torch/nn.h>

#include <string>
#include <vector>

#include "largedet/modeling/backbone/resnet.h"

namespace largedet::modeling {

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
