// The ROI heads (see roi_heads/roi_heads.h). Comments name the torchvision function each part
// mirrors.
#include "largedet/modeling/roi_heads/roi_heads.h"

#include <torch/torch.h>

#include <algorithm>

#include "largedet/core/error.h"
#include "largedet/ops/boxes.h"
#include "largedet/ops/host_sync.h"

namespace largedet::modeling {

RoIHeadsImpl::RoIHeadsImpl(int64_t in_channels, RoIHeadsOptions opts, uint64_t seed)
    : options(std::move(opts)),
      box_roi_pool(options.box_pool_size, options.box_sampling_ratio, 224, 4,
                   options.box_pool_aligned),
      mask_roi_pool(options.mask_pool_size, options.mask_sampling_ratio, 224, 4,
                    options.mask_pool_aligned),
      box_coder(options.box_weights),
      matcher(options.fg_iou_thresh, options.bg_iou_thresh, false),
      sampler(random_sampler(options.batch_size_per_image, options.positive_fraction, seed)) {
  LARGEDET_CHECK(options.num_classes >= 2, "ROI heads: ", options.num_classes,
                 " classes (background included) is too few (MODEL.ROI_HEADS.NUM_CLASSES)");
  box_head =
      build_box_head(options.box_head_name, BoxHeadOptions(in_channels, options.box_pool_size)
                                                .num_conv(options.box_num_conv)
                                                .conv_dim(options.box_conv_dim)
                                                .num_fc(options.box_num_fc)
                                                .fc_dim(options.representation_size)
                                                .norm(options.box_norm));
  register_module("box_head", box_head);
  box_predictor = register_module(
      "box_predictor",
      FastRCNNOutputLayers(FastRCNNOutputLayersOptions(box_head->output_size(), options.num_classes)
                               .box_weights(options.box_weights)
                               .smooth_l1_beta(options.smooth_l1_beta)
                               .bbox_reg_loss_weight(options.bbox_reg_loss_weight)
                               .score_thresh(options.score_thresh)
                               .nms_thresh(options.nms_thresh)
                               .detections_per_img(options.detections_per_img)));
  if (options.mask_on) {
    mask_head =
        build_mask_head(options.mask_head_name, MaskHeadOptions(in_channels, options.num_classes)
                                                    .num_conv(options.mask_num_conv)
                                                    .conv_dim(options.mask_conv_dim)
                                                    .norm(options.mask_norm));
    // The head's parts join the ROI heads under their own names (torchvision's mask_head and
    // mask_predictor for the built-in head), so that checkpoints load by name.
    for (const auto& part : mask_head->named_children()) register_module(part.key(), part.value());
  }
}

void RoIHeadsImpl::train(bool on) {
  torch::nn::Module::train(on);
  if (mask_head) mask_head->train(on);
}

torch::Tensor RoIHeadsImpl::mask_logits(const std::vector<torch::Tensor>& features,
                                        const std::vector<torch::Tensor>& boxes,
                                        const ImageSizes& image_sizes) {
  return mask_head->forward(mask_roi_pool(features, boxes, image_sizes));
}

std::pair<std::vector<Detections>, LossMap> RoIHeadsImpl::forward(
    const std::vector<torch::Tensor>& features, std::vector<torch::Tensor> proposals,
    const ImageSizes& image_sizes, const std::vector<Target>* targets) {
  bool train = is_training() && targets;
  std::vector<torch::Tensor> labels, regression_targets, matched_idxs;
  if (train) {
    LARGEDET_CHECK(targets->size() == proposals.size(), "ROI heads: ", targets->size(),
                   " targets for ", proposals.size(), " images");
    // select_training_samples: GT boxes join the proposals, match, sample, encode.
    for (size_t i = 0; i < proposals.size(); ++i) {
      const auto& t = (*targets)[i];
      auto props = torch::cat({proposals[i], t.boxes.to(proposals[i].dtype())}, 0);
      torch::Tensor matched, lab;
      if (t.boxes.numel() == 0) {
        matched = torch::zeros({props.size(0)}, props.options().dtype(torch::kLong));
        lab = torch::zeros({props.size(0)}, props.options().dtype(torch::kLong));
      } else {
        matched = matcher(ops::box_iou(t.boxes, props));
        lab = t.labels.index_select(0, matched.clamp_min(0)).to(torch::kLong);
        lab.masked_fill_(matched == ops::Matcher::kBelowLowThreshold, 0);
        lab.masked_fill_(matched == ops::Matcher::kBetweenThresholds, -1);
        matched = matched.clamp_min(0);
      }
      proposals[i] = props;
      labels.push_back(lab);
      matched_idxs.push_back(matched);
    }
    auto [pos, neg] = sampler(labels);
    std::vector<torch::Tensor> sampled;
    for (size_t i = 0; i < proposals.size(); ++i) sampled.push_back(pos[i].logical_or(neg[i]));
    sampled = ops::nonzero_each(sampled, "sampled RoIs per image");
    for (size_t i = 0; i < proposals.size(); ++i) {
      const auto& keep = sampled[i];
      proposals[i] = proposals[i].index_select(0, keep);
      labels[i] = labels[i].index_select(0, keep);
      matched_idxs[i] = matched_idxs[i].index_select(0, keep);
      const auto& gt = (*targets)[i].boxes;
      auto matched_boxes =
          gt.numel() == 0 ? torch::zeros_like(proposals[i]) : gt.index_select(0, matched_idxs[i]);
      regression_targets.push_back(box_coder.encode(matched_boxes, proposals[i]));
    }
  }

  int64_t pooled_levels = std::min<int64_t>(4, features.size());
  std::vector<torch::Tensor> pooled(features.begin(), features.begin() + pooled_levels);
  auto x = box_roi_pool(pooled, proposals, image_sizes);
  x = box_head->forward(x);
  auto [class_logits, box_regression] = box_predictor->forward(x);

  std::vector<Detections> result;
  LossMap losses;
  if (train) {
    losses = box_predictor->losses(class_logits, box_regression, labels, regression_targets);
    if (options.mask_on) {
      // maskrcnn_loss: positives only (targets: mask_rcnn_targets).
      std::vector<torch::Tensor> mask_boxes, mask_targets, mask_labels, positives;
      for (const auto& l : labels) positives.push_back(l > 0);
      positives = ops::nonzero_each(positives, "positive RoIs per image");
      for (size_t i = 0; i < proposals.size(); ++i) {
        const auto& p = positives[i];
        auto boxes = proposals[i].index_select(0, p);
        auto idx = matched_idxs[i].index_select(0, p);
        mask_boxes.push_back(boxes);
        mask_labels.push_back(labels[i].index_select(0, p));
        const int64_t m = options.mask_pool_size * 2;
        mask_targets.push_back(mask_rcnn_targets((*targets)[i], idx, boxes, m, i));
      }
      auto logits = mask_logits(pooled, mask_boxes, image_sizes);
      losses["loss_mask"] = mask_rcnn_loss(logits, mask_labels, mask_targets);
    }
    return {result, losses};
  }

  result = box_predictor->inference(class_logits, box_regression, proposals, image_sizes);
  if (options.mask_on) {
    std::vector<torch::Tensor> boxes;
    for (const auto& d : result) boxes.push_back(d.boxes);
    mask_rcnn_inference(mask_logits(pooled, boxes, image_sizes), result);
  }
  return {result, losses};
}

}  // namespace largedet::modeling
