// The box predictor: its layers, fastrcnn_loss and postprocess_detections (see
// roi_heads/fast_rcnn.h). Comments name the torchvision function each part mirrors.
#include "largedet/modeling/roi_heads/fast_rcnn.h"

#include <torch/torch.h>

#include "largedet/core/error.h"
#include "largedet/modeling/postprocessing.h"
#include "largedet/ops/boxes.h"

namespace largedet::modeling {

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

LossMap FastRCNNOutputLayersImpl::losses(const torch::Tensor& class_logits,
                                         const torch::Tensor& box_regression,
                                         const torch::Tensor& labels,
                                         const torch::Tensor& regression_targets,
                                         const torch::Tensor& positive,
                                         const torch::Tensor& sampled) const {
  // fastrcnn_loss: means over the sampled RoIs, as masked sums (the slots past an image's samples
  // count for nothing) divided by their number, which stays on the device.
  LossMap losses;
  auto num_sampled = sampled.sum().clamp_min(1).to(torch::kFloat);
  auto ce = torch::cross_entropy_loss(class_logits, labels, {}, at::Reduction::None);
  losses["loss_cls"] = torch::where(sampled, ce, 0.0).sum() / num_sampled;
  auto reg = box_regression.reshape({class_logits.size(0), options.num_classes(), 4})
                 .gather(1, labels.view({-1, 1, 1}).expand({-1, 1, 4}))
                 .squeeze(1);
  auto l1 =
      torch::smooth_l1_loss(reg, regression_targets, at::Reduction::None, options.smooth_l1_beta())
          .sum(1);
  losses["loss_box_reg"] =
      torch::where(positive, l1, 0.0).sum() / num_sampled * options.bbox_reg_loss_weight();
  return losses;
}

std::vector<Detections> FastRCNNOutputLayersImpl::inference(const torch::Tensor& class_logits,
                                                            const torch::Tensor& box_regression,
                                                            const Proposals& proposals,
                                                            const ImageSizes& image_sizes) const {
  const int64_t num_classes = class_logits.size(-1);
  const int64_t num_images = proposals.boxes.size(0), per_image = proposals.boxes.size(1);
  auto pred_boxes = box_coder.decode(box_regression, proposals.boxes.reshape({-1, 4}))
                        .reshape({num_images, per_image * num_classes, 4});
  pred_boxes =
      ops::clip_boxes_to_images(pred_boxes, image_sizes_tensor(image_sizes, pred_boxes.device()))
          .reshape({num_images, per_image, num_classes, 4});
  // Padding rows score 0: the score threshold (a strict >) drops them with the low scores.
  auto pred_scores = torch::softmax(class_logits, -1)
                         .reshape({num_images, per_image, num_classes})
                         .masked_fill(proposals.valid.logical_not().unsqueeze(2), 0.0);
  std::vector<Detections> out;
  for (int64_t i = 0; i < num_images; ++i) {
    auto boxes = pred_boxes[i];
    auto scores = pred_scores[i];
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
