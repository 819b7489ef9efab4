// RPN (see proposal_generator/rpn.h). Comments name the torchvision function each part mirrors.
#include "largedet/modeling/proposal_generator/rpn.h"

#include <torch/torch.h>

#include <algorithm>

#include "largedet/core/error.h"
#include "largedet/ops/boxes.h"
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

std::pair<Proposals, LossMap> RegionProposalNetworkImpl::forward(
    const std::vector<torch::Tensor>& features, std::pair<int64_t, int64_t> padded_size,
    const ImageSizes& image_sizes, const TargetBatch* targets) {
  LARGEDET_CHECK(static_cast<int64_t>(features.size()) == anchor_generator.num_levels(),
                 "RPN: ", features.size(), " feature levels but ", anchor_generator.num_levels(),
                 " anchor levels (MODEL.ANCHOR_GENERATOR.SIZES)");
  auto [objectness, deltas] = head->forward(features);
  auto anchors = anchor_generator(padded_size, features);
  int64_t num_images = features[0].size(0);
  LARGEDET_CHECK(static_cast<int64_t>(image_sizes.size()) == num_images,
                 "RPN: ", image_sizes.size(), " image sizes for ", num_images, " images");

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

  // filter_proposals, over all images at once: the candidates of each image stay in its row, and
  // the ones torchvision removes (small boxes, then low scores) are masked out instead.
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
  auto clipped =
      ops::clip_boxes_to_images(top_boxes, image_sizes_tensor(image_sizes, top_boxes.device()));
  auto candidate = ops::box_size_at_least(clipped, options.min_size)
                       .logical_and_(top_scores >= options.score_thresh);
  // One NMS per image within each level (torchvision's batched_nms by level), all images in one
  // launch; the survivors by descending score, padded to post_n.
  auto [keep, kept] = ops::segmented_nms(clipped, top_scores, levels, candidate, options.nms_thresh,
                                         std::min(post_n, idx.size(1)));
  // The padding is zeroed: it may have gathered a removed candidate, even a non-finite one, and
  // it still passes through the ROI heads' pooling.
  Proposals result{clipped.gather(1, keep.unsqueeze(-1).expand({-1, -1, 4}))
                       .masked_fill_(kept.logical_not().unsqueeze(-1), 0.0),
                   kept};

  LossMap losses;
  if (train && targets) {
    LARGEDET_CHECK(targets->num_images() == num_images, "RPN: ", targets->num_images(),
                   " targets for ", num_images, " images");
    // assign_targets_to_anchors: labels 1 (object), 0 (background), -1 (ignored) per anchor.
    auto matched = targets->match(matcher, anchors.unsqueeze(0));  // [N, T]
    auto matched_boxes = targets->matched_boxes(matched.clamp_min(0));
    auto labels = (matched >= 0).to(torch::kFloat);
    labels.masked_fill_(matched == ops::Matcher::kBetweenThresholds, -1.0);
    // compute_loss: sums over the sampled anchors, masked (no index list, no read of its size).
    auto [pos_mask, neg_mask] = sampler(labels);
    auto pos = pos_mask.flatten(), sampled = pos.logical_or(neg_mask.flatten());
    auto num_sampled = sampled.sum().clamp_min(1).to(torch::kFloat);
    // Unmatched anchors' targets (encoded against empty boxes) are not finite: zeroed, so that no
    // NaN reaches the gradient through the masked-out terms.
    auto regression_targets = torch::where(
        pos.unsqueeze(1), box_coder.encode(matched_boxes.reshape({-1, 4}), all_anchors), 0.0);
    auto loc =
        torch::smooth_l1_loss(del, regression_targets, at::Reduction::None, options.smooth_l1_beta)
            .sum(1);
    losses["loss_rpn_loc"] = torch::where(pos, loc, 0.0).sum() / num_sampled *
                             (options.loss_weight * options.bbox_reg_loss_weight);
    auto cls = torch::binary_cross_entropy_with_logits(obj.flatten(), labels.flatten().clamp_min(0),
                                                       {}, {}, at::Reduction::None);
    losses["loss_rpn_cls"] =
        torch::where(sampled, cls, 0.0).sum() / num_sampled * options.loss_weight;
  }
  return {result, losses};
}

}  // namespace largedet::modeling
