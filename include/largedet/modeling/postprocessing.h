// The last step of every detector's inference (the R-CNN box predictor's and RetinaNet's):
// per-class NMS, then the highest-scoring survivors.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "largedet/modeling/structures.h"

namespace largedet::modeling {

// One image: per-class NMS of boxes [M, 4] with scores and int64 labels [M] at `nms_thresh`, then
// the `max_detections` highest-scoring survivors, by descending score (ties in index order).
Detections select_detections(const torch::Tensor& boxes, const torch::Tensor& scores,
                             const torch::Tensor& labels, double nms_thresh,
                             int64_t max_detections);

// The same for every image of a batch at once, among its candidates: boxes [N, M, 4], scores and
// labels [N, M], candidate [N, M] bool (the rest is neither kept nor suppresses anything). The
// result equals select_detections on each image's candidates, in index order, with one host read
// for the whole batch (the survivors per image) instead of two per image:
// - the (at most) kMaxCandidates highest-scoring candidates of each image go, in index order, to
//   one ops::segmented_nms for all images, which fills max_detections slots per image;
// - an image with more candidates loses only ones that score below every one it keeps, which NMS
//   (suppression flows from higher to lower scores) cannot bring back, unless it keeps fewer than
//   max_detections or its last survivor ties the lowest candidate taken. Such an image, told
//   apart on the device and read with the counts, is done again on its own (select_detections).
std::vector<Detections> select_detections(const torch::Tensor& boxes, const torch::Tensor& scores,
                                          const torch::Tensor& labels,
                                          const torch::Tensor& candidate, double nms_thresh,
                                          int64_t max_detections);

// The candidates per image segmented_nms takes at once: RetinaNet's 5 levels x 1000 fit whole;
// its mask is 5000^2 bits (3 MB) per image on a GPU.
inline constexpr int64_t kMaxCandidates = 5000;

}  // namespace largedet::modeling
