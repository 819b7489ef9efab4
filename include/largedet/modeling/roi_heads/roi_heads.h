// The second stage of Faster / Mask R-CNN (detectron2's StandardROIHeads), as torchvision's
// RoIHeads computes it (same parameter names, same order of operations), so that torchvision
// weights give the same detections here: proposals matched and sampled for training, pooled
// (MultiScaleRoIAlign), through the box head (roi_heads/box_head.h) and the box predictor
// (roi_heads/fast_rcnn.h), and for Mask R-CNN the mask head (roi_heads/mask_head.h).
#pragma once

#include <torch/nn.h>

#include <array>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "largedet/modeling/roi_heads/box_head.h"
#include "largedet/modeling/roi_heads/fast_rcnn.h"
#include "largedet/modeling/roi_heads/mask_head.h"
#include "largedet/modeling/sampling.h"
#include "largedet/modeling/structures.h"
#include "largedet/modeling/target_batch.h"
#include "largedet/ops/box_coder.h"
#include "largedet/ops/matcher.h"
#include "largedet/ops/roi_align.h"

namespace largedet::modeling {

struct RoIHeadsOptions {
  int64_t num_classes = 91;  // including background
  // The box head (MODEL.ROI_BOX_HEAD.*): a registered name (box_head.h) and its options; no conv
  // and 2 FCs is torchvision's TwoMLPHead.
  std::string box_head_name = "FastRCNNConvFCHead";
  int64_t representation_size = 1024;  // the box head's FC width (FC_DIM)
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
  BoxWeights box_weights = {10, 10, 5, 5};
  double score_thresh = 0.05, nms_thresh = 0.5;
  int64_t detections_per_img = 100;
  bool mask_on = false;
  // The mask head (MODEL.ROI_MASK_HEAD.*): a registered name (mask_head.h) and its options.
  std::string mask_head_name = "MaskRCNNConvUpsampleHead";
  int64_t mask_pool_size = 14, mask_sampling_ratio = 2;
  int64_t mask_num_conv = 4, mask_conv_dim = 256;
};

struct RoIHeadsImpl : torch::nn::Module {
  RoIHeadsImpl(int64_t in_channels, RoIHeadsOptions options, uint64_t seed = 0);
  // features: every FPN level the RPN saw (P2-P6); only the first four (P2-P5) are pooled, as
  // torchvision's MultiScaleRoIAlign over featmap_names 0-3. In training (with targets) returns
  // losses loss_cls, loss_box_reg (and loss_mask), sampled into batch_size_per_image slots per
  // image so that nothing is read back from the device; otherwise detections in the network's
  // input coordinates.
  std::pair<std::vector<Detections>, LossMap> forward(const std::vector<torch::Tensor>& features,
                                                      const Proposals& proposals,
                                                      const ImageSizes& image_sizes,
                                                      const TargetBatch* targets = nullptr);
  // Also switches the mask head, whose parts (not the head itself) are registered here.
  void train(bool on = true) override;

  RoIHeadsOptions options;
  // Registered as box_head and box_predictor (.cls_score, .bbox_pred): torchvision's names.
  std::shared_ptr<BoxHeadImpl> box_head;
  FastRCNNOutputLayers box_predictor{nullptr};
  // Mask R-CNN: the head's children are registered here under their own names (the default's
  // mask_head.i and mask_predictor.conv5_mask / mask_fcn_logits, torchvision's names).
  std::shared_ptr<MaskHeadImpl> mask_head;
  ops::MultiScaleRoIAlign box_roi_pool, mask_roi_pool;
  ops::BoxCoder box_coder;
  ops::Matcher matcher;
  SamplerFn sampler;

 private:
  torch::Tensor mask_logits(const std::vector<torch::Tensor>& features,
                            const std::vector<torch::Tensor>& boxes, const ImageSizes& image_sizes);
};
TORCH_MODULE(RoIHeads);

}  // namespace largedet::modeling
