// The layer stacks of the ROI heads, in torchvision's module layout so its checkpoints load by
// name (MODEL.ROI_BOX_HEAD.*, MODEL.ROI_MASK_HEAD.*; docs/modeling.md, "ROI heads"):
// - box head, no convs and two FCs: TwoMLPHead, `fc6` and `fc7` (Faster R-CNN v1);
// - otherwise FastRCNNConvFCHead: `i` = (conv 3x3, norm, ReLU) per conv, then Flatten, then
//   (Linear, ReLU) per FC, numbered in one Sequential (fasterrcnn_resnet50_fpn_v2; detectron2's
//   "4conv1fc" is 4 convs of 256 and one FC of 1024);
// - mask head: `i` = (conv 3x3, [norm,] ReLU) per conv (MaskRCNNHeads).
// A conv followed by a norm has no bias, as torchvision's Conv2dNormActivation.
#pragma once

#include <torch/nn.h>

#include <cstdint>
#include <string>
#include <vector>

namespace largedet::modeling {

struct BoxHeadOptions {
  BoxHeadOptions(int64_t in_channels, int64_t pool_size)
      : in_channels_(in_channels), pool_size_(pool_size) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, pool_size);
  TORCH_ARG(int64_t, num_conv) = 0;
  TORCH_ARG(int64_t, conv_dim) = 256;
  TORCH_ARG(int64_t, num_fc) = 2;
  TORCH_ARG(int64_t, fc_dim) = 1024;
  TORCH_ARG(std::string, norm) = "";  // a make_norm() name for the convs; "" none
};

// Takes pooled features [K, C, P, P]; returns [K, out_channels] (fc_dim, or C x P x P when there
// is no FC). Throws largedet::Error for a head without layers.
torch::nn::Sequential make_box_head(const BoxHeadOptions& options);
int64_t box_head_out_channels(const BoxHeadOptions& options);

// One conv of each of `layers`' widths from in_channels, each followed by `norm` (when not "")
// and a ReLU.
torch::nn::Sequential make_mask_head(int64_t in_channels, const std::vector<int64_t>& layers,
                                     const std::string& norm);

}  // namespace largedet::modeling
