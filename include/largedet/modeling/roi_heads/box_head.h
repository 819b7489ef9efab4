// The ROI box head (detectron2's modeling/roi_heads/box_head.py): pooled RoI features to one
// feature vector per RoI, chosen by MODEL.ROI_BOX_HEAD.NAME from a registry. Built in:
// FastRCNNConvFCHead, in torchvision's module layout so its checkpoints load by name
// (docs/modeling.md, "ROI heads"):
// - no convs and two FCs: TwoMLPHead, `fc6` and `fc7` (Faster R-CNN v1);
// - otherwise FastRCNNConvFCHead: `i` = (conv 3x3, norm, ReLU) per conv, then Flatten, then
//   (Linear, ReLU) per FC, numbered as one Sequential (fasterrcnn_resnet50_fpn_v2; detectron2's
//   "4conv1fc" is 4 convs of 256 and one FC of 1024).
// A conv followed by a norm has no bias, as torchvision's Conv2dNormActivation.
#pragma once

#include <torch/nn.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace largedet::modeling {

// MODEL.ROI_BOX_HEAD.*: what every box head is built from.
struct BoxHeadOptions {
  BoxHeadOptions(int64_t in_channels, int64_t pool_size)
      : in_channels_(in_channels), pool_size_(pool_size) {}
  TORCH_ARG(int64_t, in_channels);  // of the pooled features
  TORCH_ARG(int64_t, pool_size);    // POOLER_RESOLUTION
  TORCH_ARG(int64_t, num_conv) = 0;
  TORCH_ARG(int64_t, conv_dim) = 256;
  TORCH_ARG(int64_t, num_fc) = 2;
  TORCH_ARG(int64_t, fc_dim) = 1024;
  TORCH_ARG(std::string, norm) = "";  // a make_norm() name for the convs; "" none
};

// A box head: pooled features [K, C, P, P] to [K, output_size()]. The ROI heads register it as
// `box_head` and feed its output to the box predictor (roi_heads/fast_rcnn.h).
struct BoxHeadImpl : torch::nn::Module {
  virtual torch::Tensor forward(const torch::Tensor& x) = 0;
  virtual int64_t output_size() const = 0;
};

// detectron2's FastRCNNConvFCHead (torchvision's TwoMLPHead / FastRCNNConvFCHead). Throws
// largedet::Error for a head without layers.
struct FastRCNNConvFCHeadImpl : BoxHeadImpl {
  explicit FastRCNNConvFCHeadImpl(BoxHeadOptions options);
  torch::Tensor forward(const torch::Tensor& x) override;
  // fc_dim, or conv_dim (in_channels without convs) x P x P when there is no FC.
  int64_t output_size() const override;

  BoxHeadOptions options;
  // The layers in order; each is registered in this module under its own name (fc6, fc7, or
  // 0, 1, ...), as torchvision's heads are Sequentials.
  torch::nn::Sequential layers;
};
TORCH_MODULE(FastRCNNConvFCHead);

using BoxHeadFactory = std::function<std::shared_ptr<BoxHeadImpl>(const BoxHeadOptions&)>;
// Adds or replaces a box head by name (MODEL.ROI_BOX_HEAD.NAME).
void register_box_head(const std::string& name, BoxHeadFactory factory);
// The head registered as `name`; unknown names throw largedet::Error listing the registered ones.
std::shared_ptr<BoxHeadImpl> build_box_head(const std::string& name, const BoxHeadOptions& options);
std::vector<std::string> registered_box_heads();

}  // namespace largedet::modeling
