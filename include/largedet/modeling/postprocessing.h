// The last step of every detector's inference on one image (the R-CNN box predictor's and
// RetinaNet's): per-class NMS, then the highest-scoring survivors.
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <cstdint>

#include "largedet/modeling/structures.h"
#include "largedet/ops/nms.h"

namespace largedet::modeling {

// Per-class NMS at `nms_thresh`, then the `max_detections` highest-scoring survivors
// (batched_nms returns them by descending score).
inline Detections select_detections(const torch::Tensor& boxes, const torch::Tensor& scores,
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
