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
  const auto pred_scores =
      torch::softmax(class_logits, -1).reshape({num_images, per_image, num_classes});
  // Class 0 is the background. torchvision drops low scores, then small boxes: one mask.
  const auto boxes = pred_boxes.narrow(2, 1, num_classes - 1).reshape({num_images, -1, 4});
  const auto scores = pred_scores.narrow(2, 1, num_classes - 1).reshape({num_images, -1});
  const auto labels = torch::arange(1, num_classes, scores.options().dtype(torch::kLong))
                          .view({1, 1, -1})
                          .expand({num_images, per_image, num_classes - 1})
                          .reshape({num_images, -1});
  // The proposals' padding is never a candidate, whatever the threshold.
  const auto candidate = (scores > options.score_thresh())
                             .logical_and_(ops::box_size_at_least(boxes, 1e-2))
                             .logical_and_(proposals.valid.unsqueeze(2)
                                               .expand({-1, -1, num_classes - 1})
                                               .reshape({num_images, -1}));
  return select_detections(boxes, scores, labels, candidate, options.nms_thresh(),
                           options.detections_per_img());
}

}  // namespace largedet::modeling
