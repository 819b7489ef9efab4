// The region proposal network of Faster / Mask R-CNN, as torchvision's RegionProposalNetwork
// computes it (same parameter names, same order of operations), so that torchvision weights give
// the same proposals here.
#pragma once

#include <torch/nn.h>

#include <utility>
#include <vector>

#include "largedet/modeling/sampling.h"
#include "largedet/modeling/structures.h"
#include "largedet/modeling/target_batch.h"
#include "largedet/ops/anchor_generator.h"
#include "largedet/ops/box_coder.h"
#include "largedet/ops/matcher.h"

namespace largedet::modeling {

struct RPNHeadImpl : torch::nn::Module {
  RPNHeadImpl(int64_t in_channels, int64_t num_anchors);
  // Per level: objectness [N, A, H, W] and deltas [N, 4A, H, W].
  std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> forward(
      const std::vector<torch::Tensor>& features);

  torch::nn::ModuleList conv{nullptr};  // conv.0.0 (torchvision's Conv2dNormActivation)
  torch::nn::Conv2d cls_logits{nullptr}, bbox_pred{nullptr};
};
TORCH_MODULE(RPNHead);

struct RPNOptions {
  std::vector<std::vector<double>> anchor_sizes = {{32}, {64}, {128}, {256}, {512}};
  std::vector<std::vector<double>> aspect_ratios = {{0.5, 1.0, 2.0}};
  int64_t pre_nms_top_n_train = 2000, pre_nms_top_n_test = 1000;    // per level
  int64_t post_nms_top_n_train = 2000, post_nms_top_n_test = 1000;  // per image
  double nms_thresh = 0.7;
  double fg_iou_thresh = 0.7, bg_iou_thresh = 0.3;
  int64_t batch_size_per_image = 256;
  double positive_fraction = 0.5;
  double score_thresh = 0.0;
  double min_size = 1e-3;
  double smooth_l1_beta = 1.0 / 9;  // torchvision's; detectron2 uses 0 (L1)
  // detectron2's: loss_rpn_cls x loss_weight, loss_rpn_loc x loss_weight x bbox_reg_loss_weight.
  double loss_weight = 1.0, bbox_reg_loss_weight = 1.0;
};

struct RegionProposalNetworkImpl : torch::nn::Module {
  RegionProposalNetworkImpl(int64_t in_channels, RPNOptions options, uint64_t seed = 0);
  // features: [N, C, H_l, W_l] per level; padded_size: the batch tensor's (H, W). Returns the
  // proposals of every image (padded, with a validity mask; at most the post-NMS top-n each) and,
  // when training with targets, the losses loss_rpn_cls and loss_rpn_loc. Nothing is read back
  // from the device.
  std::pair<Proposals, LossMap> forward(const std::vector<torch::Tensor>& features,
                                        std::pair<int64_t, int64_t> padded_size,
                                        const ImageSizes& image_sizes,
                                        const TargetBatch* targets = nullptr);

  RPNOptions options;
  RPNHead head{nullptr};
  ops::AnchorGenerator anchor_generator;
  ops::BoxCoder box_coder;
  ops::Matcher matcher;
  SamplerFn sampler;
};
TORCH_MODULE(RegionProposalNetwork);

}  // namespace largedet::modeling
