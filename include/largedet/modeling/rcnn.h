// The two stages of Faster / Mask R-CNN, as torchvision's RegionProposalNetwork and RoIHeads
// compute them (same parameter names, same order of operations), so that torchvision weights give
// the same proposals and detections here.
#pragma once

#include <torch/nn.h>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "largedet/ops/anchor_generator.h"
#include "largedet/ops/box_coder.h"
#include "largedet/ops/matcher.h"
#include "largedet/ops/roi_align.h"

namespace largedet::modeling {

using ImageSizes = std::vector<std::pair<int64_t, int64_t>>;  // (height, width) per image
using LossMap = std::map<std::string, torch::Tensor>;

// Ground truth of one image in the network's input coordinates.
struct Target {
  torch::Tensor boxes;   // [N, 4] float xyxy
  torch::Tensor labels;  // [N] int64, 1..K (0 is background)
  torch::Tensor masks;   // [N, H, W] uint8/bool/float bitmaps, or undefined
  // Or, as the loader sends them: [N, E, 3] outline edges (ops/mask_targets.h). Bitmaps give
  // torchvision's targets (RoIAlign of the bitmap), edges the mask at each bin centre.
  torch::Tensor mask_edges;
};

// Picks the training examples of each image from labels (>= 1 positive, 0 negative, < 0
// ignored): returns (positive, negative) bool masks per image.
using SamplerFn = std::function<std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>>(
    const std::vector<torch::Tensor>& labels)>;
// ops::BalancedPositiveNegativeSampler (random, seeded).
SamplerFn random_sampler(int64_t batch_size_per_image, double positive_fraction, uint64_t seed);

// ---------------------------------------------------------------------------------------------
// RPN

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
  // proposals per image ([K_i, 4], no gradient) and, when training with targets, the losses
  // loss_rpn_cls and loss_rpn_loc.
  std::pair<std::vector<torch::Tensor>, LossMap> forward(
      const std::vector<torch::Tensor>& features, std::pair<int64_t, int64_t> padded_size,
      const ImageSizes& image_sizes, const std::vector<Target>* targets = nullptr);

  RPNOptions options;
  RPNHead head{nullptr};
  ops::AnchorGenerator anchor_generator;
  ops::BoxCoder box_coder;
  ops::Matcher matcher;
  SamplerFn sampler;
};
TORCH_MODULE(RegionProposalNetwork);

// ---------------------------------------------------------------------------------------------
// ROI heads

struct RoIHeadsOptions {
  int64_t num_classes = 91;            // including background
  int64_t representation_size = 1024;  // the box head's FC width
  // The box head's convs (roi_head_layers.h): 0 is torchvision's TwoMLPHead with 2 FCs.
  int64_t box_num_conv = 0, box_conv_dim = 256, box_num_fc = 2;
  std::string box_norm, mask_norm;  // the heads' conv norms (make_norm names; "" none)
  int64_t box_pool_size = 7, box_sampling_ratio = 2;
  // RoIAlign with the half-pixel shift (detectron2's ROIAlignV2) instead of torchvision's.
  bool box_pool_aligned = false, mask_pool_aligned = false;
  double smooth_l1_beta = 1.0 / 9;
  double bbox_reg_loss_weight = 1.0;  // loss_box_reg's weight
  double fg_iou_thresh = 0.5, bg_iou_thresh = 0.5;
  int64_t batch_size_per_image = 512;
  double positive_fraction = 0.25;
  std::array<double, 4> box_weights = {10, 10, 5, 5};
  double score_thresh = 0.05, nms_thresh = 0.5;
  int64_t detections_per_img = 100;
  bool mask_on = false;
  int64_t mask_pool_size = 14, mask_sampling_ratio = 2;
  std::vector<int64_t> mask_layers = {256, 256, 256, 256};
  int64_t mask_dim_reduced = 256;
};

// Per-image detections, in the coordinates the caller asked for.
struct Detections {
  torch::Tensor boxes;   // [D, 4] float xyxy
  torch::Tensor scores;  // [D]
  torch::Tensor labels;  // [D] int64, 1..K
  torch::Tensor masks;   // Mask R-CNN: [D, 1, 28, 28] probabilities from the heads; after
                         // Detector::detect, [D, 1, H, W] probabilities pasted into the image
};

// The last step of every detector's inference on one image: per-class NMS at `nms_thresh`, then
// the `max_detections` highest-scoring survivors (batched_nms returns them by descending score).
Detections select_detections(const torch::Tensor& boxes, const torch::Tensor& scores,
                             const torch::Tensor& labels, double nms_thresh,
                             int64_t max_detections);

struct RoIHeadsImpl : torch::nn::Module {
  RoIHeadsImpl(int64_t in_channels, RoIHeadsOptions options, uint64_t seed = 0);
  // features: every FPN level the RPN saw (P2-P6); only the first four (P2-P5) are pooled, as
  // torchvision's MultiScaleRoIAlign over featmap_names 0-3. proposals per image. In training
  // (with targets) returns losses loss_cls, loss_box_reg (and loss_mask); otherwise detections in
  // the network's input coordinates.
  std::pair<std::vector<Detections>, LossMap> forward(const std::vector<torch::Tensor>& features,
                                                      std::vector<torch::Tensor> proposals,
                                                      const ImageSizes& image_sizes,
                                                      const std::vector<Target>* targets = nullptr);

  RoIHeadsOptions options;
  // box_head (roi_head_layers.h), box_predictor.cls_score / bbox_pred, mask_head.i.0,
  // mask_predictor.conv5_mask / mask_fcn_logits: torchvision's names.
  torch::nn::Sequential box_head{nullptr};
  torch::nn::Linear cls_score{nullptr}, bbox_pred{nullptr};
  torch::nn::Sequential mask_head{nullptr};  // of Sequential(conv, [norm,] relu)
  torch::nn::ConvTranspose2d conv5_mask{nullptr};
  torch::nn::Conv2d mask_fcn_logits{nullptr};
  ops::MultiScaleRoIAlign box_roi_pool, mask_roi_pool;
  ops::BoxCoder box_coder;
  ops::Matcher matcher;
  SamplerFn sampler;

 private:
  std::vector<Detections> postprocess(const torch::Tensor& class_logits,
                                      const torch::Tensor& box_regression,
                                      const std::vector<torch::Tensor>& proposals,
                                      const ImageSizes& image_sizes);
  torch::Tensor mask_logits(const std::vector<torch::Tensor>& features,
                            const std::vector<torch::Tensor>& boxes, const ImageSizes& image_sizes);
};
TORCH_MODULE(RoIHeads);

}  // namespace largedet::modeling
