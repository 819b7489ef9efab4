// RPN (see proposal_generator/rpn.h). Comments name the torchvision function each part mirrors.
#include "largedet/modeling/proposal_generator/rpn.h"

#include <torch/torch.h>

#include <algorithm>

#include "largedet/core/error.h"
#include "largedet/ops/boxes.h"
#include "largedet/ops/host_sync.h"
#include "largedet/ops/nms.h"

namespace largedet::modeling {

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

}  // namespace largedet::modeling
