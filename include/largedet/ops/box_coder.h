// BoxCoder: the (dx, dy, dw, dh) box regression parameterisation of R-CNN, as torchvision's
// det_utils.BoxCoder and detectron2's Box2BoxTransform compute it, so that weights trained there
// decode the same here.
#pragma once

#include <ATen/ATen.h>

#include <array>
#include <cmath>

namespace largedet::ops {

class BoxCoder {
 public:
  // weights: (wx, wy, ww, wh), e.g. (10, 10, 5, 5) for the box head and (1, 1, 1, 1) for the RPN.
  // dw and dh are clamped to bbox_xform_clip before exp() when decoding.
  explicit BoxCoder(std::array<double, 4> weights,
                    double bbox_xform_clip = std::log(1000.0 / 16.0));

  // Regression targets that turn `proposals` [N, 4] into `gt_boxes` [N, 4] (both xyxy), [N, 4].
  at::Tensor encode(const at::Tensor& gt_boxes, const at::Tensor& proposals) const;

  // Applies `rel_codes` [N, 4 * K] (K boxes per proposal, e.g. one per class) to `boxes` [N, 4];
  // returns [N, 4 * K] xyxy boxes in rel_codes' dtype.
  at::Tensor decode(const at::Tensor& rel_codes, const at::Tensor& boxes) const;

  const std::array<double, 4>& weights() const { return weights_; }
  double bbox_xform_clip() const { return bbox_xform_clip_; }

 private:
  std::array<double, 4> weights_;
  double bbox_xform_clip_;
};

}  // namespace largedet::ops
