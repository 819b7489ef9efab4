// RetinaNet (see meta_arch/retinanet.h). Comments name the torchvision function each part mirrors.
#include "largedet/modeling/meta_arch/retinanet.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "largedet/core/error.h"
#include "largedet/modeling/backbone/norm.h"
#include "largedet/modeling/postprocessing.h"
#include "largedet/modeling/target_batch.h"
#include "largedet/ops/boxes.h"

namespace largedet::modeling {

torch::Tensor sigmoid_focal_loss(const torch::Tensor& inputs, const torch::Tensor& targets,
                                 double alpha, double gamma) {
  auto p = torch::sigmoid(inputs);
  auto ce = torch::binary_cross_entropy_with_logits(inputs, targets, {}, {}, at::Reduction::None);
  auto p_t = p * targets + (1 - p) * (1 - targets);
  auto loss = ce * (1 - p_t).pow(gamma);
  if (alpha >= 0) loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss;
  return loss;
}

torch::Tensor giou_loss(const torch::Tensor& b, const torch::Tensor& g) {
  const double eps = 1e-7;
  auto x1 = b.select(1, 0), y1 = b.select(1, 1), x2 = b.select(1, 2), y2 = b.select(1, 3);
  auto x1g = g.select(1, 0), y1g = g.select(1, 1), x2g = g.select(1, 2), y2g = g.select(1, 3);
  auto xi1 = torch::max(x1, x1g), yi1 = torch::max(y1, y1g);
  auto xi2 = torch::min(x2, x2g), yi2 = torch::min(y2, y2g);
  auto inter = torch::where((yi2 > yi1).logical_and(xi2 > xi1), (xi2 - xi1) * (yi2 - yi1),
                            torch::zeros_like(x1));
  auto uni = (x2 - x1) * (y2 - y1) + (x2g - x1g) * (y2g - y1g) - inter;
  auto iou = inter / (uni + eps);
  auto area_c =
      (torch::max(x2, x2g) - torch::min(x1, x1g)) * (torch::max(y2, y2g) - torch::min(y1, y1g));
  return 1 - (iou - (area_c - uni) / (area_c + eps));
}

namespace {

std::vector<std::vector<double>> default_retina_anchor_sizes() {
  std::vector<std::vector<double>> sizes;
  for (int s : {32, 64, 128, 256, 512})
    sizes.push_back({static_cast<double>(s), std::floor(s * std::pow(2.0, 1.0 / 3)),
                     std::floor(s * std::pow(2.0, 2.0 / 3))});
  return sizes;
}

RetinaNetOptions with_defaults(RetinaNetOptions o) {
  if (o.anchor_sizes.empty()) o.anchor_sizes = default_retina_anchor_sizes();
  return o;
}

torch::nn::ModuleList conv_tower(int64_t channels, int64_t n, const std::string& norm) {
  torch::nn::ModuleList tower;
  for (int64_t i = 0; i < n; ++i) {
    torch::nn::Sequential block;
    auto conv = torch::nn::Conv2d(
        torch::nn::Conv2dOptions(channels, channels, 3).padding(1).bias(norm.empty()));
    torch::nn::init::normal_(conv->weight, 0, 0.01);
    if (conv->bias.defined()) torch::nn::init::zeros_(conv->bias);
    block->push_back(conv);
    if (!norm.empty()) block->push_back(make_norm(norm, channels));
    block->push_back(torch::nn::ReLU());
    tower->push_back(block);
  }
  return tower;
}

torch::Tensor run_tower(torch::nn::ModuleList& tower, torch::Tensor x) {
  for (const auto& block : *tower) x = block->as<torch::nn::Sequential>()->forward(x);
  return x;
}

}  // namespace

RetinaNetImpl::RetinaNetImpl(RetinaNetOptions opts)
    : options(with_defaults(std::move(opts))),
      anchor_generator(options.anchor_sizes, options.aspect_ratios),
      box_coder({1, 1, 1, 1}),
      matcher(options.fg_iou_thresh, options.bg_iou_thresh, true) {
  LARGEDET_CHECK(
      options.box_loss == "l1" || options.box_loss == "smooth_l1" || options.box_loss == "giou",
      "RetinaNet: unknown box loss '", options.box_loss,
      "' (MODEL.RETINANET.BBOX_REG_LOSS_TYPE: l1, smooth_l1 or giou)");
  transform.options = options.transform;
  backbone = register_module("backbone", BackboneWithFPN(options.backbone, options.fpn_channels,
                                                         options.fpn_norm, options.extra));
  int64_t c = options.fpn_channels;
  int64_t a = anchor_generator.num_anchors_per_location(0);
  auto head = std::make_shared<torch::nn::Module>();
  auto cls = std::make_shared<torch::nn::Module>();
  auto reg = std::make_shared<torch::nn::Module>();
  cls_convs = cls->register_module("conv", conv_tower(c, options.num_convs, options.head_norm));
  cls_logits = cls->register_module(
      "cls_logits",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(c, a * options.num_classes, 3).padding(1)));
  reg_convs = reg->register_module("conv", conv_tower(c, options.num_convs, options.head_norm));
  bbox_reg = reg->register_module(
      "bbox_reg", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, a * 4, 3).padding(1)));
  // torchvision: N(0, 0.01) weights; the classifier's bias gives every class the prior.
  torch::nn::init::normal_(cls_logits->weight, 0, 0.01);
  torch::nn::init::constant_(cls_logits->bias,
                             -std::log((1 - options.prior_prob) / options.prior_prob));
  torch::nn::init::normal_(bbox_reg->weight, 0, 0.01);
  torch::nn::init::zeros_(bbox_reg->bias);
  head->register_module("classification_head", cls);
  head->register_module("regression_head", reg);
  register_module("head", head);
}

std::vector<DetectorPart> RetinaNetImpl::parts() {
  return {{"backbone", {backbone->body.ptr()}},
          {"fpn", {backbone->fpn.ptr()}},
          {"head", {named_children()["head"]}}};
}

std::pair<torch::Tensor, torch::Tensor> RetinaNetImpl::head_forward(
    const std::vector<torch::Tensor>& features) {
  std::vector<torch::Tensor> logits, deltas;
  int64_t k = options.num_classes;
  for (const auto& f : features) {
    int64_t n = f.size(0), h = f.size(2), w = f.size(3);
    auto l = cls_logits->forward(run_tower(cls_convs, f));
    int64_t a = l.size(1) / k;
    logits.push_back(l.view({n, a, k, h, w}).permute({0, 3, 4, 1, 2}).reshape({n, -1, k}));
    auto d = bbox_reg->forward(run_tower(reg_convs, f));
    deltas.push_back(d.view({n, a, 4, h, w}).permute({0, 3, 4, 1, 2}).reshape({n, -1, 4}));
  }
  return {torch::cat(logits, 1), torch::cat(deltas, 1)};
}

LossMap RetinaNetImpl::losses(const ImageList& images, const std::vector<Target>& targets) {
  LARGEDET_CHECK(is_training(), "Detector::losses needs training mode (call train())");
  LARGEDET_CHECK(targets.size() == images.image_sizes.size(), "RetinaNet: ", targets.size(),
                 " targets for ", images.image_sizes.size(), " images");
  auto features = backbone->forward(images.tensor);
  auto [logits, deltas] = head_forward(features);
  auto anchors = anchor_generator({images.tensor.size(2), images.tensor.size(3)}, features);
  // Dense over the anchors of all images at once, masked: no anchor count is read back.
  const TargetBatch batch(targets);
  const int64_t num_images = batch.num_images();
  auto matched = batch.match(matcher, anchors.unsqueeze(0));  // [N, T]
  auto fg = matched >= 0;
  auto num_fg = fg.sum(1).clamp_min(1).to(torch::kFloat);  // per image, as torchvision divides
  auto gt_index = matched.clamp_min(0);
  // Classification: one-hot targets on foreground anchors, ignoring the in-between ones.
  auto cls_target = torch::zeros_like(logits).scatter_(
      2, batch.matched_labels(gt_index).unsqueeze(2), fg.unsqueeze(2).to(logits.scalar_type()));
  auto focal = sigmoid_focal_loss(logits, cls_target, options.focal_alpha, options.focal_gamma);
  auto valid = (matched != ops::Matcher::kBetweenThresholds).unsqueeze(2);
  auto cls_loss = torch::where(valid, focal, 0.0).sum({1, 2}) / num_fg;
  // Box regression on foreground anchors.
  auto gt = batch.matched_boxes(gt_index).reshape({-1, 4});
  auto all_anchors = anchors.repeat({num_images, 1});
  auto flat_deltas = deltas.reshape({-1, 4});
  auto fg_flat = fg.reshape({-1, 1});
  torch::Tensor per_anchor;
  if (options.box_loss == "giou") {
    // The background anchors' pairs (against any box, even an empty one) are replaced, not only
    // masked, so that nothing non-finite reaches the gradient.
    auto decoded = box_coder.decode(flat_deltas, all_anchors);
    per_anchor = giou_loss(torch::where(fg_flat, decoded, all_anchors),
                           torch::where(fg_flat, gt, all_anchors));
  } else {
    auto target = torch::where(fg_flat, box_coder.encode(gt, all_anchors), 0.0);
    per_anchor =
        (options.box_loss == "l1" ? torch::l1_loss(flat_deltas, target, at::Reduction::None)
                                  : torch::smooth_l1_loss(flat_deltas, target, at::Reduction::None,
                                                          options.smooth_l1_beta))
            .sum(1);
  }
  auto box_loss = torch::where(fg, per_anchor.view({num_images, -1}), 0.0).sum(1) / num_fg;
  double n = static_cast<double>(std::max<int64_t>(1, num_images));
  return {{"loss_cls", cls_loss.sum() / n}, {"loss_box_reg", box_loss.sum() / n}};
}

std::vector<Detections> RetinaNetImpl::inference(const ImageList& images) {
  auto features = backbone->forward(images.tensor);
  auto [logits, deltas] = head_forward(features);
  auto anchors = anchor_generator({images.tensor.size(2), images.tensor.size(3)}, features);
  int64_t k = logits.size(2);
  int64_t a = anchor_generator.num_anchors_per_location(0);
  std::vector<int64_t> per_level;
  for (const auto& f : features) per_level.push_back(f.size(2) * f.size(3) * a);
  auto anchor_levels = anchors.split_with_sizes(per_level, 0);
  const int64_t n = logits.size(0);
  const auto sizes = image_sizes_tensor(images.image_sizes, logits.device());
  auto logit_levels = logits.split_with_sizes(per_level, 1);
  auto delta_levels = deltas.split_with_sizes(per_level, 1);
  std::vector<torch::Tensor> boxes, scores, labels, candidates;
  for (size_t l = 0; l < per_level.size(); ++l) {
    // postprocess_detections: the top-k (anchor, class) pairs per level among those above the
    // threshold; the rest of the k (an image with fewer) are padding, not candidates.
    auto s = torch::sigmoid(logit_levels[l]).flatten(1);
    auto above = s > options.score_thresh;
    auto [top, idx] = s.masked_fill(above.logical_not(), -std::numeric_limits<double>::infinity())
                          .topk(std::min(options.topk_candidates, s.size(1)), 1);
    candidates.push_back(above.gather(1, idx));
    scores.push_back(s.gather(1, idx));
    labels.push_back(idx.remainder(k));
    auto anchor_idx = torch::div(idx, k, "floor");
    auto b = box_coder.decode(
        delta_levels[l].gather(1, anchor_idx.unsqueeze(2).expand({n, -1, 4})).reshape({-1, 4}),
        anchor_levels[l].index_select(0, anchor_idx.flatten()));
    boxes.push_back(ops::clip_boxes_to_images(b.view({n, -1, 4}), sizes));
  }
  return select_detections(torch::cat(boxes, 1), torch::cat(scores, 1), torch::cat(labels, 1),
                           torch::cat(candidates, 1), options.nms_thresh,
                           options.detections_per_img);
}

}  // namespace largedet::modeling
