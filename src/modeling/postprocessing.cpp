// select_detections, one image and a batch (see postprocessing.h).
#include "largedet/modeling/postprocessing.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <limits>

#include "largedet/core/error.h"
#include "largedet/ops/host_sync.h"
#include "largedet/ops/nms.h"

namespace largedet::modeling {

Detections select_detections(const torch::Tensor& boxes, const torch::Tensor& scores,
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

std::vector<Detections> select_detections(const torch::Tensor& boxes, const torch::Tensor& scores,
                                          const torch::Tensor& labels,
                                          const torch::Tensor& candidate, double nms_thresh,
                                          int64_t max_detections) {
  LARGEDET_CHECK(boxes.dim() == 3 && boxes.size(2) == 4, "select_detections: boxes must be ",
                 "[N, M, 4], got ", boxes.sizes());
  const int64_t n = boxes.size(0), m = boxes.size(1);
  for (const auto* t : {&scores, &labels, &candidate})
    LARGEDET_CHECK(t->dim() == 2 && t->size(0) == n && t->size(1) == m,
                   "select_detections: scores, labels and candidate must be [", n, ", ", m,
                   "], got ", t->sizes());
  LARGEDET_CHECK(candidate.scalar_type() == torch::kBool && labels.scalar_type() == torch::kLong,
                 "select_detections: candidate must be bool and labels int64, got ",
                 candidate.scalar_type(), " and ", labels.scalar_type());
  LARGEDET_CHECK(max_detections >= 0, "select_detections: max_detections ", max_detections, " < 0");
  torch::Tensor b = boxes, s = scores, l = labels, c = candidate, lowest_taken;
  const int64_t k = std::min(m, kMaxCandidates);
  if (k < m) {
    // The k best candidates, back in index order so that NMS breaks score ties as on all of them.
    const auto ranked =
        scores.masked_fill(candidate.logical_not(), -std::numeric_limits<double>::infinity());
    auto taken = std::get<0>(std::get<1>(ranked.topk(k, 1, true, false)).sort(1));
    lowest_taken = ranked.gather(1, taken).amin(1);
    b = boxes.gather(1, taken.unsqueeze(2).expand({n, k, 4}));
    s = scores.gather(1, taken), l = labels.gather(1, taken), c = candidate.gather(1, taken);
  }
  const auto [keep, kept] = ops::segmented_nms(b, s, l, c, nms_thresh, max_detections);
  const auto survivors = kept.sum(1);
  auto redo = torch::zeros_like(survivors);
  if (k < m && max_detections > 0) {
    const auto last = s.gather(1, keep.gather(1, (survivors - 1).clamp_min(0).unsqueeze(1)));
    const auto whole = survivors.ge(max_detections).logical_and_(last.squeeze(1) > lowest_taken);
    redo = candidate.sum(1).gt(k).logical_and_(whole.logical_not()).to(torch::kLong);
  }
  const auto read =
      ops::read_to_host(torch::stack({survivors, redo}).to(torch::kLong), "detections per image");
  const auto counts = read.accessor<int64_t, 2>();
  std::vector<Detections> out;
  for (int64_t i = 0; i < n; ++i) {
    if (counts[1][i]) {
      const auto idx = torch::nonzero(candidate[i]).view(-1);
      out.push_back(select_detections(boxes[i].index_select(0, idx), scores[i].index_select(0, idx),
                                      labels[i].index_select(0, idx), nms_thresh, max_detections));
      continue;
    }
    const auto idx = keep[i].narrow(0, 0, counts[0][i]);
    Detections d;
    d.boxes = b[i].index_select(0, idx);
    d.scores = s[i].index_select(0, idx);
    d.labels = l[i].index_select(0, idx);
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace largedet::modeling
