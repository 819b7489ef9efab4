// ResNet-18/34/50/101/152 in torchvision's layout (stride on the 3x3 conv, parameter names as
// torchvision's so its checkpoints load by name), widths and freezing in detectron2's terms.
#pragma once

#include <torch/nn.h>

#include <string>
#include <vector>

namespace largedet::modeling {

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

}  // namespace largedet::modeling
