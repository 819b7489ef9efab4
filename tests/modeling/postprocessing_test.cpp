// select_detections over a batch against the same function image by image on each image's
// candidates: equal detections, with one host read for the batch, also when an image has more
// candidates than segmented NMS takes at once (and when that changes the result, where the image
// is done again on its own).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "largedet/modeling/postprocessing.h"
#include "largedet/ops/host_sync.h"

namespace largedet::modeling {
namespace {

struct Batch {
  torch::Tensor boxes, scores, labels, candidate;
};

// N images of M boxes around `spread` random centres (a small spread: many overlaps), scores
// distinct, `classes` labels, candidates where the score is above `threshold`.
Batch random_batch(int64_t n, int64_t m, double spread, int64_t classes, double threshold,
                   uint64_t seed) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto xy = torch::rand({n, m, 2}, gen) * spread;
  auto wh = 20 + torch::rand({n, m, 2}, gen) * 30;
  Batch b;
  b.boxes = torch::cat({xy, xy + wh}, 2);
  // A permutation per image: distinct scores, so the order (and the result) is well-posed.
  b.scores = (std::get<1>(torch::rand({n, m}, gen).sort(1)).to(torch::kFloat) + 1) / (m + 1);
  b.labels = torch::randint(1, classes + 1, {n, m}, gen);
  b.candidate = b.scores > threshold;
  return b;
}

void expect_per_image_result(const Batch& b, double nms, int64_t max_det, int64_t expected_syncs) {
  ops::HostSyncProfiler profiler;
  const auto batched = select_detections(b.boxes, b.scores, b.labels, b.candidate, nms, max_det);
  const auto syncs = profiler.counts().syncs;
  ASSERT_EQ(static_cast<int64_t>(batched.size()), b.boxes.size(0));
  for (int64_t i = 0; i < b.boxes.size(0); ++i) {
    const auto idx = torch::nonzero(b.candidate[i]).view(-1);
    const auto one =
        select_detections(b.boxes[i].index_select(0, idx), b.scores[i].index_select(0, idx),
                          b.labels[i].index_select(0, idx), nms, max_det);
    EXPECT_TRUE(torch::equal(batched[i].boxes, one.boxes)) << "image " << i;
    EXPECT_TRUE(torch::equal(batched[i].scores, one.scores)) << "image " << i;
    EXPECT_TRUE(torch::equal(batched[i].labels, one.labels)) << "image " << i;
  }
  EXPECT_EQ(syncs, expected_syncs);
}

TEST(SelectDetections, ABatchEqualsEachImageWithOneHostRead) {
  const auto b = random_batch(3, 400, 200, 5, 0.3, 1);
  {
    ops::HostSyncProfiler profiler;
    const auto d = select_detections(b.boxes, b.scores, b.labels, b.candidate, 0.5, 100);
    EXPECT_EQ(profiler.counts().syncs_by_name.at("largedet::detections per image"), 1);
    EXPECT_GT(d[0].scores.numel(), 10);  // the case is not trivial
  }
  expect_per_image_result(b, 0.5, 100, 1);
  expect_per_image_result(b, 0.5, 7, 1);  // fewer slots than survivors
  expect_per_image_result(b, 0.5, 0, 1);
  auto none = b;
  none.candidate = torch::zeros_like(b.candidate);
  expect_per_image_result(none, 0.5, 100, 1);
}

TEST(SelectDetections, MoreCandidatesThanNmsTakesGiveTheSameDetections) {
  const int64_t m = kMaxCandidates + 1500;
  // Spread out: every image keeps 100 survivors among its best kMaxCandidates, so the candidates
  // left out cannot matter and the batch is still one read.
  expect_per_image_result(random_batch(2, m, 3000, 3, 0.0, 2), 0.5, 100, 1);
  // All on one spot with one class: a few survivors, fewer than 100, so the best kMaxCandidates
  // do not prove the result; both images are done again on their own (after the batch's read,
  // each its candidates' nonzero and its NMS's output size).
  auto crowded = random_batch(2, m, 5, 1, 0.0, 3);
  expect_per_image_result(crowded, 0.3, 100, 5);
  // Only the second image crowded: the first stays in the batch.
  auto mixed = random_batch(2, m, 3000, 3, 0.0, 4);
  mixed.boxes[1] = crowded.boxes[1];
  mixed.labels[1] = crowded.labels[1];
  expect_per_image_result(mixed, 0.3, 100, 3);
}

}  // namespace
}  // namespace largedet::modeling
