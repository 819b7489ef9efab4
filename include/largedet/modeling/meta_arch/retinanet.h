// RetinaNet (ResNet-FPN P3-P7; detectron2's meta_arch/retinanet.py), as torchvision's RetinaNet:
// parameter names, anchors, matching, focal loss and post-processing, so that torchvision weights
// detect the same here.
#pragma once

#include <torch/nn.h>

#include <string>
#include <utility>
#include <vector>

#include "largedet/modeling/backbone/fpn.h"
#include "largedet/modeling/backbone/resnet.h"
#include "largedet/modeling/meta_arch/detector.h"
#include "largedet/modeling/transform.h"
#include "largedet/ops/anchor_generator.h"
#include "largedet/ops/box_coder.h"
#include "largedet/ops/matcher.h"

namespace largedet::modeling {

struct RetinaNetOptions {
  ResNetOptions backbone = [] {
    ResNetOptions o;
    o.returned_layers = {2, 3, 4};
    return o;
  }();
  int64_t fpn_channels = 256;
  std::string fpn_norm;
  FPNExtra extra = FPNExtra::kP6P7FromP5;  // torchvision; kP6P7FromC5 is the paper's
  int64_t num_classes = 91;  // logits per anchor; torchvision keeps index 0 (never a target)
  int64_t num_convs = 4;
  std::string head_norm;  // "" (torchvision v1) or e.g. "GN" (v2)
  // Per level, torchvision's defaults: (s, int(s * 2^(1/3)), int(s * 2^(2/3))), s = 32..512.
  std::vector<std::vector<double>> anchor_sizes;
  std::vector<std::vector<double>> aspect_ratios = {{0.5, 1.0, 2.0}};
  double fg_iou_thresh = 0.5, bg_iou_thresh = 0.4;
  double focal_alpha = 0.25, focal_gamma = 2.0;
  std::string box_loss = "l1";  // l1 (torchvision), smooth_l1, giou
  double smooth_l1_beta = 1.0;
  double prior_prob = 0.01;  // the classifier's initial foreground probability
  double score_thresh = 0.05, nms_thresh = 0.5;
  int64_t topk_candidates = 1000, detections_per_img = 300;
  TransformOptions transform;
};

// torchvision's sigmoid_focal_loss, per element (the losses mask and sum it).
torch::Tensor sigmoid_focal_loss(const torch::Tensor& logits, const torch::Tensor& targets,
                                 double alpha, double gamma);
// torchvision's generalized_box_iou_loss (eps 1e-7), per box pair.
torch::Tensor giou_loss(const torch::Tensor& boxes, const torch::Tensor& gt);

struct RetinaNetImpl : DetectorImpl {
  explicit RetinaNetImpl(RetinaNetOptions options);
  // loss_cls and loss_box_reg (detectron2's names; torchvision's classification and
  // bbox_regression).
  LossMap losses(const ImageList& images, const std::vector<Target>& targets) override;
  std::vector<Detections> inference(const ImageList& images) override;
  // backbone, fpn, head (both subnets: they share the FPN levels as one head).
  std::vector<DetectorPart> parts() override;
  using DetectorImpl::losses;

  // Head outputs over all levels: logits [N, sum HWA, K], deltas [N, sum HWA, 4].
  std::pair<torch::Tensor, torch::Tensor> head_forward(const std::vector<torch::Tensor>& features);

  RetinaNetOptions options;
  BackboneWithFPN backbone{nullptr};
  torch::nn::ModuleList cls_convs{nullptr}, reg_convs{nullptr};  // head.*_head.conv.i
  torch::nn::Conv2d cls_logits{nullptr}, bbox_reg{nullptr};
  ops::AnchorGenerator anchor_generator;
  ops::BoxCoder box_coder;
  ops::Matcher matcher;
};
TORCH_MODULE(RetinaNet);

}  // namespace largedet::modeling
