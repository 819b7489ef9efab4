// Matcher: assigns each prediction (anchor or proposal) the ground-truth box it overlaps most, or a
// negative label, from a [num_gt, num_predictions] quality (IoU) matrix, as torchvision's
// det_utils.Matcher does.
#pragma once

#include <ATen/ATen.h>

namespace largedet::ops {

class Matcher {
 public:
  static constexpr int64_t kBelowLowThreshold = -1;
  static constexpr int64_t kBetweenThresholds = -2;

  // Quality < low_threshold -> kBelowLowThreshold; low <= quality < high -> kBetweenThresholds
  // (or kBelowLowThreshold as well when low == high). allow_low_quality_matches keeps, for each
  // ground truth, the predictions with which it has its highest quality matched to it.
  Matcher(double high_threshold, double low_threshold, bool allow_low_quality_matches = false);

  // Returns [num_predictions] int64: a ground-truth index >= 0 or one of the negative labels.
  // With no ground truth every prediction is kBelowLowThreshold (background).
  // A batch of images' matrices [B, G, P] gives [B, P]; rows of padding (images with fewer than
  // G ground truths) must hold a quality below every threshold and below 0, e.g. -1: they then
  // match nothing, low-quality matches included.
  // One deliberate difference from torchvision: a ground truth whose highest quality is 0 (it
  // overlaps no prediction) does not turn every prediction with quality 0 into a low-quality match.
  at::Tensor operator()(const at::Tensor& match_quality_matrix) const;

  double high_threshold() const { return high_; }
  double low_threshold() const { return low_; }
  bool allow_low_quality_matches() const { return allow_low_quality_; }

 private:
  double high_, low_;
  bool allow_low_quality_;
};

}  // namespace largedet::ops
