// The box predictor of the ROI heads (detectron2's modeling/roi_heads/fast_rcnn.py,
// FastRCNNOutputLayers; torchvision's FastRCNNPredictor with fastrcnn_loss and
// postprocess_detections): per-class scores and box deltas, their losses and the detections.
#pragma once

#include <torch/nn.h>

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "largedet/modeling/structures.h"
#include "largedet/ops/box_coder.h"

namespace largedet::modeling {

using BoxWeights = std::array<double, 4>;

struct FastRCNNOutputLayersOptions {
  FastRCNNOutputLayersOptions(int64_t input_size, int64_t num_classes)
      : input_size_(input_size), num_classes_(num_classes) {}
  TORCH_ARG(int64_t, input_size);   // the box head's output_size()
  TORCH_ARG(int64_t, num_classes);  // including background (index 0)
  TORCH_ARG(BoxWeights, box_weights) = BoxWeights{10, 10, 5, 5};
  TORCH_ARG(double, smooth_l1_beta) = 1.0 / 9;    // MODEL.ROI_BOX_HEAD.SMOOTH_L1_BETA
  TORCH_ARG(double, bbox_reg_loss_weight) = 1.0;  // MODEL.ROI_BOX_HEAD.BBOX_REG_LOSS_WEIGHT
  TORCH_ARG(double, score_thresh) = 0.05;         // MODEL.ROI_HEADS.SCORE_THRESH_TEST
  TORCH_ARG(double, nms_thresh) = 0.5;            // MODEL.ROI_HEADS.NMS_THRESH_TEST
  TORCH_ARG(int64_t, detections_per_img) = 100;   // TEST.DETECTIONS_PER_IMAGE
};

// `cls_score` and `bbox_pred` (torchvision's names, under roi_heads.box_predictor).
struct FastRCNNOutputLayersImpl : torch::nn::Module {
  explicit FastRCNNOutputLayersImpl(FastRCNNOutputLayersOptions options);
  // The box head's features [K, input_size]: class logits [K, num_classes] and class-specific
  // box deltas [K, num_classes * 4].
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x);
  // fastrcnn_loss over the RoI slots of all images, in the order of the logits [K, .]: labels [K]
  // int64 (any class where not sampled), encoded regression targets [K, 4] (finite everywhere),
  // and bool masks [K] of the slots that hold a sampled positive / a sampled RoI. Returns
  // loss_cls and loss_box_reg, means over the sampled RoIs as torchvision's.
  LossMap losses(const torch::Tensor& class_logits, const torch::Tensor& box_regression,
                 const torch::Tensor& labels, const torch::Tensor& regression_targets,
                 const torch::Tensor& positive, const torch::Tensor& sampled) const;
  // postprocess_detections: decode, clip, drop the background, low scores, tiny boxes and the
  // proposals' padding, then per-class NMS (select_detections, all images at once, one host
  // read); in the network's input coordinates. The logits are the proposals', image by image.
  std::vector<Detections> inference(const torch::Tensor& class_logits,
                                    const torch::Tensor& box_regression, const Proposals& proposals,
                                    const ImageSizes& image_sizes) const;

  FastRCNNOutputLayersOptions options;
  torch::nn::Linear cls_score{nullptr}, bbox_pred{nullptr};
  ops::BoxCoder box_coder;
};
TORCH_MODULE(FastRCNNOutputLayers);

}  // namespace largedet::modeling
