// RPN and ROI heads (see rcnn.h). Comments name the torchvision function each part mirrors.
#include "largedet/modeling/rcnn.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "largedet/core/error.h"
#include "largedet/modeling/roi_head_layers.h"
#include "largedet/ops/boxes.h"
#include "largedet/ops/host_sync.h"
#include "largedet/ops/mask_targets.h"
#include "largedet/ops/nms.h"
#include "largedet/ops/sampler.h"

namespace largedet::modeling {

namespace {

std::vector<int64_t> counts(const std::vector<torch::Tensor>& xs) {
  std::vector<int64_t> n;
  for (const auto& x : xs) n.push_back(x.size(0));
  return n;
}

}  // namespace

SamplerFn random_sampler(int64_t batch_size_per_image, double positive_fraction, uint64_t seed) {
  auto sampler = std::make_shared<ops::BalancedPositiveNegativeSampler>(batch_size_per_image,
                                                                        positive_fraction, seed);
  return [sampler](const std::vector<torch::Tensor>& labels) { return (*sampler)(labels); };
}

// ---------------------------------------------------------------------------------------------
// RPN

RPNHeadImpl::RPNHeadImpl(int64_t in_channels, int64_t num_anchors) {
  // A ModuleList: LibTorch's Sequential cannot hold a Sequential.
  conv = torch::nn::ModuleList();
  torch::nn::Sequential block;
  block->push_back(
      torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, in_channels, 3).padding(1)));
  conv->push_back(block);
  register_module("conv", conv);
  cls_logits = register_module(
      "cls_logits", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, num_anchors, 1)));
  bbox_pred = register_module(
      "bbox_pred", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, 4 * num_anchors, 1)));
  // torchvision: N(0, 0.01) weights, zero biases.
  for (auto& p : named_parameters()) {
    torch::NoGradGuard guard;
    if (p.key().find("weight") != std::string::npos)
      p.value().normal_(0, 0.01);
    else
      p.value().zero_();
  }
}

std::pair<std::vector<torch::Tensor>, std::vector<torch::Tensor>> RPNHeadImpl::forward(
    const std::vector<torch::Tensor>& features) {
  std::vector<torch::Tensor> logits, deltas;
  for (const auto& f : features) {
    auto t = torch::relu(conv[0]->as<torch::nn::Sequential>()->forward(f));
    logits.push_back(cls_logits->forward(t));
    deltas.push_back(bbox_pred->forward(t));
  }
  return {logits, deltas};
}

RegionProposalNetworkImpl::RegionProposalNetworkImpl(int64_t in_channels, RPNOptions opts,
                                                     uint64_t seed)
    : options(std::move(opts)),
      anchor_generator(options.anchor_sizes, options.aspect_ratios),
      box_coder({1, 1, 1, 1}),
      matcher(options.fg_iou_thresh, options.bg_iou_thresh, /*allow_low_quality_matches=*/true),
      sampler(random_sampler(options.batch_size_per_image, options.positive_fraction, seed)) {
  int64_t a = anchor_generator.num_anchors_per_location(0);
  for (int64_t l = 1; l < anchor_generator.num_levels(); ++l)
    LARGEDET_CHECK(anchor_generator.num_anchors_per_location(l) == a,
                   "RPN: every level needs the same number of anchors per location");
  head = register_module("head", RPNHead(in_channels, a));
}

std::pair<std::vector<torch::Tensor>, LossMap> RegionProposalNetworkImpl::forward(
    const std::vector<torch::Tensor>& features, std::pair<int64_t, int64_t> padded_size,
    const ImageSizes& image_sizes, const std::vector<Target>* targets) {
  LARGEDET_CHECK(static_cast<int64_t>(features.size()) == anchor_generator.num_levels(),
                 "RPN: ", features.size(), " feature levels but ", anchor_generator.num_levels(),
                 " anchor levels (MODEL.ANCHOR_GENERATOR.SIZES)");
  auto [objectness, deltas] = head->forward(features);
  auto anchors = anchor_generator(padded_size, features);
  int64_t num_images = features[0].size(0);

  // concat_box_prediction_layers: per level [N, A*C, H, W] -> [N, H*W*A, C], levels concatenated.
  std::vector<int64_t> num_per_level;
  std::vector<torch::Tensor> obj_flat, del_flat;
  for (size_t l = 0; l < objectness.size(); ++l) {
    auto o = objectness[l];
    int64_t a = o.size(1), h = o.size(2), w = o.size(3);
    num_per_level.push_back(a * h * w);
    obj_flat.push_back(
        o.view({num_images, a, 1, h, w}).permute({0, 3, 4, 1, 2}).reshape({num_images, -1, 1}));
    del_flat.push_back(deltas[l]
                           .view({num_images, a, 4, h, w})
                           .permute({0, 3, 4, 1, 2})
                           .reshape({num_images, -1, 4}));
  }
  auto obj = torch::cat(obj_flat, 1).flatten(0, -2);    // [N * T, 1]
  auto del = torch::cat(del_flat, 1).reshape({-1, 4});  // [N * T, 4]
  auto all_anchors = anchors.repeat({num_images, 1});
  auto proposals = box_coder.decode(del.detach(), all_anchors).view({num_images, -1, 4});

  // filter_proposals
  bool train = is_training();
  int64_t pre_n = train ? options.pre_nms_top_n_train : options.pre_nms_top_n_test;
  int64_t post_n = train ? options.post_nms_top_n_train : options.post_nms_top_n_test;
  auto scores_all = obj.detach().reshape({num_images, -1});
  std::vector<torch::Tensor> level_ids, top_idx;
  int64_t offset = 0;
  for (size_t l = 0; l < num_per_level.size(); ++l) {
    int64_t n = num_per_level[l];
    level_ids.push_back(
        torch::full({n}, static_cast<int64_t>(l), scores_all.options().dtype(torch::kLong)));
    auto ob = scores_all.narrow(1, offset, n);
    top_idx.push_back(std::get<1>(ob.topk(std::min(pre_n, n), 1)) + offset);
    offset += n;
  }
  auto idx = torch::cat(top_idx, 1);
  auto levels = torch::cat(level_ids, 0).reshape({1, -1}).expand_as(scores_all).gather(1, idx);
  auto top_scores = torch::sigmoid(scores_all.gather(1, idx));
  auto top_boxes = proposals.gather(1, idx.unsqueeze(-1).expand({-1, -1, 4}));
  // torchvision removes small boxes, then low scores: one mask per image, and one read for all.
  std::vector<torch::Tensor> clipped, kept;
  for (int64_t i = 0; i < num_images; ++i) {
    clipped.push_back(
        ops::clip_boxes_to_image(top_boxes[i], image_sizes[i].first, image_sizes[i].second));
    kept.push_back(ops::box_size_at_least(clipped.back(), options.min_size)
                       .logical_and_(top_scores[i] >= options.score_thresh));
  }
  kept = ops::nonzero_each(kept, "RPN proposals kept per image");
  std::vector<torch::Tensor> result;
  for (int64_t i = 0; i < num_images; ++i) {
    const auto& keep = kept[static_cast<size_t>(i)];
    auto boxes = clipped[static_cast<size_t>(i)].index_select(0, keep);
    auto scores = top_scores[i].index_select(0, keep);
    auto lvl = levels[i].index_select(0, keep);
    auto survivors = ops::batched_nms(boxes, scores, lvl, options.nms_thresh);
    survivors = survivors.narrow(0, 0, std::min(post_n, survivors.numel()));
    result.push_back(boxes.index_select(0, survivors));
  }

  LossMap losses;
  if (train && targets) {
    LARGEDET_CHECK(static_cast<int64_t>(targets->size()) == num_images, "RPN: ", targets->size(),
                   " targets for ", num_images, " images");
    // assign_targets_to_anchors
    std::vector<torch::Tensor> labels, regression_targets;
    for (int64_t i = 0; i < num_images; ++i) {
      const auto& gt = (*targets)[i].boxes;
      torch::Tensor lab, matched_boxes;
      if (gt.numel() == 0) {
        matched_boxes = torch::zeros_like(anchors);
        lab = torch::zeros({anchors.size(0)}, anchors.options());
      } else {
        auto matched = matcher(ops::box_iou(gt, anchors));
        matched_boxes = gt.index_select(0, matched.clamp_min(0));
        lab = (matched >= 0).to(torch::kFloat);
        lab.masked_fill_(matched == ops::Matcher::kBelowLowThreshold, 0.0);
        lab.masked_fill_(matched == ops::Matcher::kBetweenThresholds, -1.0);
      }
      labels.push_back(lab);
      regression_targets.push_back(box_coder.encode(matched_boxes, anchors));
    }
    // compute_loss
    auto [pos_masks, neg_masks] = sampler(labels);
    auto pos = torch::nonzero(torch::cat(pos_masks, 0)).view(-1);
    auto neg = torch::nonzero(torch::cat(neg_masks, 0)).view(-1);
    auto sampled = torch::cat({pos, neg}, 0);
    auto all_labels = torch::cat(labels, 0);
    auto all_targets = torch::cat(regression_targets, 0);
    losses["loss_rpn_loc"] =
        torch::smooth_l1_loss(del.index_select(0, pos), all_targets.index_select(0, pos),
                              at::Reduction::Sum, options.smooth_l1_beta) /
        static_cast<double>(sampled.numel()) * (options.loss_weight * options.bbox_reg_loss_weight);
    losses["loss_rpn_cls"] =
        torch::binary_cross_entropy_with_logits(obj.flatten().index_select(0, sampled),
                                                all_labels.index_select(0, sampled)) *
        options.loss_weight;
  }
  return {result, losses};
}

// ---------------------------------------------------------------------------------------------
// ROI heads

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
  const auto box_head_options = BoxHeadOptions(in_channels, options.box_pool_size)
                                    .num_conv(options.box_num_conv)
                                    .conv_dim(options.box_conv_dim)
                                    .num_fc(options.box_num_fc)
                                    .fc_dim(options.representation_size)
                                    .norm(options.box_norm);
  box_head = register_module("box_head", make_box_head(box_head_options));
  const int64_t r = box_head_out_channels(box_head_options);
  auto predictor = std::make_shared<torch::nn::Module>();
  cls_score = predictor->register_module("cls_score", torch::nn::Linear(r, options.num_classes));
  bbox_pred =
      predictor->register_module("bbox_pred", torch::nn::Linear(r, options.num_classes * 4));
  register_module("box_predictor", predictor);
  if (options.mask_on) {
    mask_head = register_module(
        "mask_head", make_mask_head(in_channels, options.mask_layers, options.mask_norm));
    const int64_t c = options.mask_layers.empty() ? in_channels : options.mask_layers.back();
    auto mp = std::make_shared<torch::nn::Module>();
    conv5_mask = mp->register_module(
        "conv5_mask",
        torch::nn::ConvTranspose2d(
            torch::nn::ConvTranspose2dOptions(c, options.mask_dim_reduced, 2).stride(2)));
    mask_fcn_logits = mp->register_module(
        "mask_fcn_logits", torch::nn::Conv2d(torch::nn::Conv2dOptions(options.mask_dim_reduced,
                                                                      options.num_classes, 1)));
    for (auto& p : mp->named_parameters()) {
      if (p.key().find("weight") != std::string::npos)
        torch::nn::init::kaiming_normal_(p.value(), 0.0, torch::kFanOut, torch::kReLU);
      else
        torch::nn::init::zeros_(p.value());
    }
    register_module("mask_predictor", mp);
  }
}

namespace {

// maskrcnn_loss's targets for the positive RoIs `boxes` matched to instances `idx` of `target`:
// rasterised from the loader's outline edges, or torchvision's RoIAlign of bitmaps.
torch::Tensor mask_targets_of(const Target& target, const torch::Tensor& idx,
                              const torch::Tensor& boxes, int64_t m, size_t image) {
  if (target.mask_edges.defined())
    return ops::rasterize_mask_edges(target.mask_edges, idx, boxes, m).to(boxes.dtype());
  LARGEDET_CHECK(target.masks.defined(), "Mask R-CNN training: image ", image, " has no masks");
  if (boxes.size(0) == 0) return torch::zeros({0, m, m}, boxes.options());
  auto rois = torch::cat({idx.to(boxes.dtype()).unsqueeze(1), boxes}, 1);
  ops::RoIAlignOptions ro;
  ro.output_height = ro.output_width = m;
  ro.spatial_scale = 1.0;
  ro.sampling_ratio = -1;
  ro.aligned = false;
  return ops::roi_align(target.masks.unsqueeze(1).to(boxes.dtype()), rois, ro).select(1, 0);
}

}  // namespace

torch::Tensor RoIHeadsImpl::mask_logits(const std::vector<torch::Tensor>& features,
                                        const std::vector<torch::Tensor>& boxes,
                                        const ImageSizes& image_sizes) {
  auto x = mask_roi_pool(features, boxes, image_sizes);
  if (!mask_head->is_empty()) x = mask_head->forward(x);
  return mask_fcn_logits->forward(torch::relu(conv5_mask->forward(x)));
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
  auto class_logits = cls_score->forward(x);
  auto box_regression = bbox_pred->forward(x);

  std::vector<Detections> result;
  LossMap losses;
  if (train) {
    // fastrcnn_loss
    auto all_labels = torch::cat(labels, 0);
    auto all_targets = torch::cat(regression_targets, 0);
    losses["loss_cls"] = torch::cross_entropy_loss(class_logits, all_labels);
    auto pos = torch::nonzero(all_labels > 0).view(-1);
    auto labels_pos = all_labels.index_select(0, pos);
    auto reg = box_regression.reshape({class_logits.size(0), options.num_classes, 4});
    auto reg_pos = reg.index_select(0, pos)
                       .gather(1, labels_pos.view({-1, 1, 1}).expand({-1, 1, 4}))
                       .squeeze(1);
    losses["loss_box_reg"] = torch::smooth_l1_loss(reg_pos, all_targets.index_select(0, pos),
                                                   at::Reduction::Sum, options.smooth_l1_beta) /
                             static_cast<double>(all_labels.numel()) * options.bbox_reg_loss_weight;
    if (options.mask_on) {
      // maskrcnn_loss: positives only (targets: mask_targets_of).
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
        mask_targets.push_back(mask_targets_of((*targets)[i], idx, boxes, m, i));
      }
      auto logits = mask_logits(pooled, mask_boxes, image_sizes);
      auto tgt = torch::cat(mask_targets, 0);
      if (tgt.numel() == 0) {
        losses["loss_mask"] = logits.sum() * 0;
      } else {
        auto lab = torch::cat(mask_labels, 0);
        auto sel =
            logits
                .gather(1, lab.view({-1, 1, 1, 1}).expand({-1, 1, logits.size(2), logits.size(3)}))
                .squeeze(1);
        losses["loss_mask"] = torch::binary_cross_entropy_with_logits(sel, tgt);
      }
    }
    return {result, losses};
  }

  result = postprocess(class_logits, box_regression, proposals, image_sizes);
  if (options.mask_on) {
    std::vector<torch::Tensor> boxes;
    for (const auto& d : result) boxes.push_back(d.boxes);
    auto logits = mask_logits(pooled, boxes, image_sizes);
    std::vector<torch::Tensor> labels_list;
    for (const auto& d : result) labels_list.push_back(d.labels);
    auto lab = torch::cat(labels_list, 0);
    // maskrcnn_inference: the probability map of each detection's class.
    auto probs = logits.sigmoid().gather(
        1, lab.view({-1, 1, 1, 1}).expand({-1, 1, logits.size(2), logits.size(3)}));
    auto split = probs.split_with_sizes(counts(boxes), 0);
    for (size_t i = 0; i < result.size(); ++i) result[i].masks = split[i];
  }
  return {result, losses};
}

std::vector<Detections> RoIHeadsImpl::postprocess(const torch::Tensor& class_logits,
                                                  const torch::Tensor& box_regression,
                                                  const std::vector<torch::Tensor>& proposals,
                                                  const ImageSizes& image_sizes) {
  int64_t num_classes = class_logits.size(-1);
  auto all_props = torch::cat(proposals, 0);
  auto pred_boxes = box_coder.decode(box_regression, all_props)
                        .reshape({all_props.size(0), options.num_classes, 4});
  auto pred_scores = torch::softmax(class_logits, -1);
  auto n = counts(proposals);
  auto boxes_list = pred_boxes.split_with_sizes(n, 0);
  auto scores_list = pred_scores.split_with_sizes(n, 0);
  std::vector<Detections> out;
  for (size_t i = 0; i < proposals.size(); ++i) {
    int64_t k = boxes_list[i].size(0);
    auto boxes = ops::clip_boxes_to_image(boxes_list[i].reshape({-1, 4}), image_sizes[i].first,
                                          image_sizes[i].second)
                     .reshape({k, num_classes, 4});
    auto scores = scores_list[i];
    auto labels = torch::arange(num_classes, scores.options().dtype(torch::kLong))
                      .view({1, -1})
                      .expand_as(scores);
    // Class 0 is the background.
    boxes = boxes.narrow(1, 1, num_classes - 1).reshape({-1, 4});
    scores = scores.narrow(1, 1, num_classes - 1).reshape({-1});
    labels = labels.narrow(1, 1, num_classes - 1).reshape({-1});
    // torchvision drops low scores, then small boxes: one mask, one nonzero, the same boxes.
    auto keep =
        torch::nonzero(
            (scores > options.score_thresh).logical_and_(ops::box_size_at_least(boxes, 1e-2)))
            .view(-1);
    boxes = boxes.index_select(0, keep), scores = scores.index_select(0, keep),
    labels = labels.index_select(0, keep);
    out.push_back(
        select_detections(boxes, scores, labels, options.nms_thresh, options.detections_per_img));
  }
  return out;
}

Detections select_detections(const torch::Tensor& boxes, const torch::Tensor& scores,
                             const torch::Tensor& labels, double nms_thresh,
                             int64_t max_detections) {
  auto keep = ops::batched_nms(boxes, scores, labels, nms_thresh);
  keep = keep.narrow(0, 0, std::min(max_detections, keep.numel()));
  Detections d;
  d.boxes = boxes.index_select(0, keep);
  d.scores = scores.index_select(0, keep);
  d.labels = labels.index_select(0, keep);
  return d;
}

}  // namespace largedet::modeling
