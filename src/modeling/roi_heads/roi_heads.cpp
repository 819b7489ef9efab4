// The ROI heads (see roi_heads/roi_heads.h). Comments name the torchvision function each part
// mirrors.
#include "largedet/modeling/roi_heads/roi_heads.h"

#include <torch/torch.h>

#include <algorithm>

#include "largedet/core/error.h"
#include "largedet/ops/boxes.h"
#include "largedet/ops/host_sync.h"
#include "largedet/ops/sampler.h"

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
    const std::vector<torch::Tensor>& features, const Proposals& proposals,
    const ImageSizes& image_sizes, const TargetBatch* targets) {
  int64_t pooled_levels = std::min<int64_t>(4, features.size());
  std::vector<torch::Tensor> pooled(features.begin(), features.begin() + pooled_levels);
  if (!(is_training() && targets)) {
    auto x = box_head->forward(box_roi_pool(pooled, proposals.boxes, image_sizes));
    auto [class_logits, box_regression] = box_predictor->forward(x);
    auto result = box_predictor->inference(class_logits, box_regression, proposals, image_sizes);
    if (options.mask_on) {
      std::vector<torch::Tensor> boxes;
      for (const auto& d : result) boxes.push_back(d.boxes);
      mask_rcnn_inference(mask_logits(pooled, boxes, image_sizes), result);
    }
    return {result, {}};
  }

  const int64_t num_images = proposals.boxes.size(0);
  LARGEDET_CHECK(targets->num_images() == num_images, "ROI heads: ", targets->num_images(),
                 " targets for ", num_images, " images");
  // select_training_samples, over all images at once: GT boxes join the proposals, match, sample
  // into fixed slots, encode.
  auto candidates = torch::cat({proposals.boxes, targets->boxes.to(proposals.boxes.dtype())}, 1);
  auto candidate_valid = torch::cat({proposals.valid, targets->valid}, 1);
  auto matched = targets->match(matcher, candidates);  // [N, P + G]
  auto labels = targets->matched_labels(matched.clamp_min(0));
  labels.masked_fill_(matched == ops::Matcher::kBelowLowThreshold, 0);
  labels.masked_fill_(matched == ops::Matcher::kBetweenThresholds, -1);
  matched = matched.clamp_min(0);
  labels.masked_fill_(candidate_valid.logical_not(), -1);  // padding is never sampled
  auto [pos, neg] = sampler(labels);
  auto slots = ops::sampled_slots(pos, neg, options.batch_size_per_image);  // [N, S]
  auto rois = candidates.gather(1, slots.index.unsqueeze(2).expand({-1, -1, 4}));
  auto roi_labels = torch::where(slots.sampled, labels.gather(1, slots.index), 0);
  auto roi_matched = matched.gather(1, slots.index);
  // Targets of the positives only: the other slots' boxes may be empty, and their codes (not
  // finite) must not reach the gradient through the masked-out terms.
  auto regression_targets = torch::where(
      slots.positive.reshape({-1, 1}),
      box_coder.encode(targets->matched_boxes(roi_matched).reshape({-1, 4}), rois.reshape({-1, 4})),
      0.0);

  auto x = box_head->forward(box_roi_pool(pooled, rois, image_sizes));
  auto [class_logits, box_regression] = box_predictor->forward(x);
  auto losses =
      box_predictor->losses(class_logits, box_regression, roi_labels.flatten(), regression_targets,
                            slots.positive.flatten(), slots.sampled.flatten());
  if (options.mask_on) {
    // maskrcnn_loss on the positives, which fill the first slots: the first max_positive slots of
    // each image hold all of them. The mask head costs per RoI about what the whole box branch
    // costs, so it runs on the positives only, taken with one read of their number: on all
    // N x 128 slots, mostly empty, it doubled the step's peak memory at 8 images
    // (docs/benchmarks.md).
    const int64_t m =
        std::min(static_cast<int64_t>(static_cast<double>(options.batch_size_per_image) *
                                      options.positive_fraction),
                 rois.size(1));
    auto slot_rois = rois.narrow(1, 0, m);
    auto positive = slots.positive.narrow(1, 0, m).reshape({-1});
    // (The host tensor is read through its pointer: item() would dispatch a second sync op.)
    const int64_t count =
        *ops::read_to_host(positive.sum(), "positive RoIs for the mask head").data_ptr<int64_t>();
    auto index = torch::nonzero_static(positive, count).view({-1});
    auto logits = mask_head->forward(mask_roi_pool.pool_rois(
        pooled, ops::boxes_to_rois(slot_rois).index_select(0, index), image_sizes));
    auto mask_targets =
        mask_rcnn_targets(*targets, roi_matched.narrow(1, 0, m), slot_rois, logits.size(-1))
            .index_select(0, index);
    losses["loss_mask"] = mask_rcnn_loss(
        logits, roi_labels.narrow(1, 0, m).reshape({-1}).index_select(0, index), mask_targets);
  }
  return {{}, losses};
}

}  // namespace largedet::modeling
