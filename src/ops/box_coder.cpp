#include "largedet/ops/box_coder.h"

#include "largedet/core/error.h"
#include "largedet/ops/boxes.h"

namespace largedet::ops {

BoxCoder::BoxCoder(std::array<double, 4> weights, double bbox_xform_clip)
    : weights_(weights), bbox_xform_clip_(bbox_xform_clip) {
  for (double w : weights_) LARGEDET_CHECK(w > 0, "BoxCoder: weights must be > 0, got ", w);
}

at::Tensor BoxCoder::encode(const at::Tensor& gt_boxes, const at::Tensor& proposals_in) const {
  LARGEDET_CHECK(
      gt_boxes.dim() == 2 && gt_boxes.size(1) == 4 && gt_boxes.sizes() == proposals_in.sizes(),
      "BoxCoder::encode: expected two [N, 4] tensors, got ", gt_boxes.sizes(), " and ",
      proposals_in.sizes());
  // Same operation order as torchvision's encode_boxes, so the float results agree bit for bit;
  // in geometry_dtype whatever the inputs' dtypes (ground truth is never rounded to half).
  const auto type = geometry_dtype(gt_boxes, proposals_in);
  const auto proposals = proposals_in.to(type);
  auto ex_widths = proposals.select(1, 2) - proposals.select(1, 0);
  auto ex_heights = proposals.select(1, 3) - proposals.select(1, 1);
  auto ex_ctr_x = proposals.select(1, 0) + 0.5 * ex_widths;
  auto ex_ctr_y = proposals.select(1, 1) + 0.5 * ex_heights;
  auto gt = gt_boxes.to(type);
  auto gt_widths = gt.select(1, 2) - gt.select(1, 0);
  auto gt_heights = gt.select(1, 3) - gt.select(1, 1);
  auto gt_ctr_x = gt.select(1, 0) + 0.5 * gt_widths;
  auto gt_ctr_y = gt.select(1, 1) + 0.5 * gt_heights;
  auto dx = weights_[0] * (gt_ctr_x - ex_ctr_x) / ex_widths;
  auto dy = weights_[1] * (gt_ctr_y - ex_ctr_y) / ex_heights;
  auto dw = weights_[2] * at::log(gt_widths / ex_widths);
  auto dh = weights_[3] * at::log(gt_heights / ex_heights);
  return at::stack({dx, dy, dw, dh}, 1);
}

at::Tensor BoxCoder::decode(const at::Tensor& rel_codes_in, const at::Tensor& boxes) const {
  LARGEDET_CHECK(rel_codes_in.dim() == 2 && rel_codes_in.size(1) % 4 == 0 && boxes.dim() == 2 &&
                     boxes.size(1) == 4 && boxes.size(0) == rel_codes_in.size(0),
                 "BoxCoder::decode: expected rel_codes [N, 4K] and boxes [N, 4], got ",
                 rel_codes_in.sizes(), " and ", boxes.sizes());
  // In geometry_dtype: half deltas decoded on half anchors would put the boxes on a 0.5-8 px grid.
  const auto type = geometry_dtype(rel_codes_in, boxes);
  const auto rel_codes = rel_codes_in.to(type);
  auto b = boxes.to(type);
  auto widths = (b.select(1, 2) - b.select(1, 0)).unsqueeze(1);
  auto heights = (b.select(1, 3) - b.select(1, 1)).unsqueeze(1);
  auto ctr_x = b.select(1, 0).unsqueeze(1) + 0.5 * widths;
  auto ctr_y = b.select(1, 1).unsqueeze(1) + 0.5 * heights;
  auto dx = rel_codes.slice(1, 0, at::indexing::None, 4) / weights_[0];
  auto dy = rel_codes.slice(1, 1, at::indexing::None, 4) / weights_[1];
  auto dw =
      (rel_codes.slice(1, 2, at::indexing::None, 4) / weights_[2]).clamp_max(bbox_xform_clip_);
  auto dh =
      (rel_codes.slice(1, 3, at::indexing::None, 4) / weights_[3]).clamp_max(bbox_xform_clip_);
  auto pred_ctr_x = dx * widths + ctr_x;
  auto pred_ctr_y = dy * heights + ctr_y;
  auto half_w = 0.5 * (at::exp(dw) * widths);
  auto half_h = 0.5 * (at::exp(dh) * heights);
  // [N, K, 4] interleaved back to [N, 4K].
  return at::stack(
             {pred_ctr_x - half_w, pred_ctr_y - half_h, pred_ctr_x + half_w, pred_ctr_y + half_h},
             2)
      .flatten(1);
}

}  // namespace largedet::ops
