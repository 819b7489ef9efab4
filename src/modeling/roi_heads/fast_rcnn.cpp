// The box predictor: its layers, fastrcnn_loss and postprocess_detections (see
// roi_heads/fast_rcnn.h). Comments name the torchvision function each part mirrors.
#include "largedet/modeling/roi_heads/fast_rcnn.h"

#include <torch/torch.h>

#include "largedet/core/error.h"
#include "largedet/modeling/postprocessing.h"
#include "largedet/ops/boxes.h"

namespace largedet::modeling {

namespace {

std::vector<int64_t> counts(const std::vector<torch::Tensor>& xs) {
  std::vector<int64_t> n;
  for (const auto& x : xs) n.push_back(x.size(0));
  return n;
}

}  // namespace

FastRCNNOutputLayersImpl::FastRCNNOutputLayersImpl(FastRCNNOutputLayersOptions o)
    : options(std::move(o)), box_coder(options.box_weights()) {
  LARGEDET_CHECK(options.num_classes() >= 2, "ROI heads: ", options.num_classes(),
                 " classes (background included) is too few (MODEL.ROI_HEADS.NUM_CLASSES)");
  const int64_t r = options.input_size();
  cls_score = register_module("cls_score", torch::nn::Linear(r, options.num_classes()));
  bbox_pred = register_module("bbox_pred", torch::nn::Linear(r, options.num_classes() * 4));
}

std::pair<torch::Tensor, torch::Tensor> FastRCNNOutputLayersImpl::forward(const torch::Tensor& x) {
  return {cls_score->forward(x), bbox_pred->forward(x)};
}

LossMap FastRCNNOutputLayersImpl::losses(
    const torch::Tensor& class_logits, const torch::Tensor& box_regression,
    const std::vector<torch::Tensor>& labels,
    const std::vector<torch::Tensor>& regression_targets) const {
  // fastrcnn_loss
  LossMap losses;
  auto all_labels = torch::cat(labels, 0);
  auto all_targets = torch::cat(regression_targets, 0);
  losses["loss_cls"] = torch::cross_entropy_loss(class_logits, all_labels);
  auto pos = torch::nonzero(all_labels > 0).view(-1);
  auto labels_pos = all_labels.index_select(0, pos);
  auto reg = box_regression.reshape({class_logits.size(0), options.num_classes(), 4});
  auto reg_pos =
      reg.index_select(0, pos).gather(1, labels_pos.view({-1, 1, 1}).expand({-1, 1, 4})).squeeze(1);
  losses["loss_box_reg"] = torch::smooth_l1_loss(reg_pos, all_targets.index_select(0, pos),
                                                 at::Reduction::Sum, options.smooth_l1_beta()) /
                           static_cast<double>(all_labels.numel()) * options.bbox_reg_loss_weight();
  return losses;
}

std::vector<Detections> FastRCNNOutputLayersImpl::inference(
    const torch::Tensor& class_logits, const torch::Tensor& box_regression,
    const std::vector<torch::Tensor>& proposals, const ImageSizes& image_sizes) const {
  int64_t num_classes = class_logits.size(-1);
  auto all_props = torch::cat(proposals, 0);
  auto pred_boxes = box_coder.decode(box_regression, all_props)
                        .reshape({all_props.size(0), options.num_classes(), 4});
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
            (scores > options.score_thresh()).logical_and_(ops::box_size_at_least(boxes, 1e-2)))
            .view(-1);
    boxes = boxes.index_select(0, keep), scores = scores.index_select(0, keep),
    labels = labels.index_select(0, keep);
    out.push_back(select_detections(boxes, scores, labels, options.nms_thresh(),
                                    options.detections_per_img()));
  }
  return out;
}

}  // namespace largedet::modeling
