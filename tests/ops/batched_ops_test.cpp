// The batched forms of the ops (one call for every image of a micro-batch, padded rows with a
// validity mask) against the per-image forms they replace in the detector's step.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "largedet/core/error.h"
#include "largedet/ops/boxes.h"
#include "largedet/ops/host_sync.h"
#include "largedet/ops/matcher.h"
#include "largedet/ops/nms.h"
#include "largedet/ops/roi_align.h"
#include "largedet/ops/sampler.h"
#include "ops_test_util.h"

namespace largedet::ops {
namespace {

using testing::to_vector;

// Row r's kept indices, read through the kept mask.
std::vector<int64_t> kept_row(const at::Tensor& keep, const at::Tensor& kept, int64_t r) {
  return to_vector(keep[r].masked_select(kept[r]));
}

TEST(SegmentedNms, EachRowEqualsNmsOverItsValidBoxes) {
  at::manual_seed(3);
  for (auto dtype : {at::kFloat, at::kDouble}) {
    for (bool by_class : {false, true}) {
      const int64_t rows = 5, n = 700;
      std::vector<at::Tensor> row_boxes;
      for (int64_t r = 0; r < rows; ++r)
        row_boxes.push_back(testing::random_boxes(n, 400, 300, 2, 150, dtype));
      auto boxes = at::stack(row_boxes);
      // Coarse scores, so that ties occur and their index order is checked.
      auto scores = (at::rand({rows, n}, at::kDouble) * 50).floor().to(dtype);
      auto classes = at::randint(0, 4, {rows, n}, at::kLong);
      auto valid = at::rand({rows, n}) > 0.3;
      valid[2].fill_(false);  // a row with nothing to keep
      for (int64_t max_keep : {int64_t{1}, int64_t{40}, n}) {
        auto [keep, kept] =
            segmented_nms(boxes, scores, by_class ? classes : at::Tensor(), valid, 0.5, max_keep);
        ASSERT_EQ(keep.sizes(), (at::IntArrayRef{rows, max_keep}));
        for (int64_t r = 0; r < rows; ++r) {
          auto idx = at::nonzero(valid[r]).view(-1);
          auto b = boxes[r].index_select(0, idx), s = scores[r].index_select(0, idx);
          auto expected =
              by_class ? batched_nms(b, s, classes[r].index_select(0, idx), 0.5) : nms(b, s, 0.5);
          expected = idx.index_select(0, expected);
          expected = expected.narrow(0, 0, std::min(max_keep, expected.numel()));
          EXPECT_EQ(kept_row(keep, kept, r), to_vector(expected))
              << "row " << r << " max_keep " << max_keep << " by_class " << by_class;
          // Kept slots come first, the padding after them holds zeros.
          const auto count = kept[r].sum().item<int64_t>();
          EXPECT_TRUE(kept[r].narrow(0, 0, count).all().item<bool>());
          EXPECT_EQ(keep[r].narrow(0, count, max_keep - count).abs().sum().item<int64_t>(), 0);
        }
      }
    }
  }
}

TEST(SegmentedNms, ReducedPrecisionScoresOrderAsTheirFloatValues) {
  at::manual_seed(4);
  auto boxes = at::stack(
      {testing::random_boxes(300, 200, 200, 2, 80), testing::random_boxes(300, 200, 200, 2, 80)});
  auto scores = at::rand({2, 300});
  auto valid = at::ones({2, 300}, at::kBool);
  for (auto dtype : {at::kHalf, at::kBFloat16}) {
    auto low = scores.to(dtype);
    auto [keep, kept] = segmented_nms(boxes, low, at::Tensor(), valid, 0.6, 300);
    auto [keep_f, kept_f] = segmented_nms(boxes, low.to(at::kFloat), at::Tensor(), valid, 0.6, 300);
    EXPECT_TRUE(keep.equal(keep_f) && kept.equal(kept_f));
  }
}

TEST(SegmentedNms, ReadsNothingBackAndRejectsBadShapes) {
  auto boxes = at::stack({testing::random_boxes(50, 100, 100, 2, 40)});
  auto scores = at::rand({1, 50});
  auto valid = at::ones({1, 50}, at::kBool);
  HostSyncProfiler profiler;
  segmented_nms(boxes, scores, at::Tensor(), valid, 0.5, 10);
  EXPECT_EQ(profiler.counts().syncs, 0);
  EXPECT_THROW(segmented_nms(boxes[0], scores, at::Tensor(), valid, 0.5, 10), Error);
  EXPECT_THROW(segmented_nms(boxes, scores.narrow(1, 0, 10), at::Tensor(), valid, 0.5, 10), Error);
  EXPECT_THROW(segmented_nms(boxes, scores, at::Tensor(), valid.to(at::kInt), 0.5, 10), Error);
}

TEST(BatchedBoxes, IouAreaAndClippingEqualThePerImageForms) {
  at::manual_seed(5);
  const int64_t images = 3;
  std::vector<at::Tensor> a, b;
  for (int64_t i = 0; i < images; ++i) {
    a.push_back(testing::random_boxes(7, 300, 200, 1, 200));
    b.push_back(testing::random_boxes(11, 300, 200, 1, 200));
  }
  auto iou = box_iou(at::stack(a), at::stack(b));
  auto shared = box_iou(at::stack(a), b[0].unsqueeze(0));
  auto area = box_area(at::stack(a));
  auto sizes = at::tensor({150, 120, 90, 300, 200, 50}, at::kLong).view({images, 2});
  auto clipped = clip_boxes_to_images(at::stack(b), sizes);
  for (int64_t i = 0; i < images; ++i) {
    EXPECT_TRUE(iou[i].equal(box_iou(a[i], b[i])));
    EXPECT_TRUE(shared[i].equal(box_iou(a[i], b[0])));
    EXPECT_TRUE(area[i].equal(box_area(a[i])));
    const auto h = sizes[i][0].item<int64_t>(), w = sizes[i][1].item<int64_t>();
    EXPECT_TRUE(clipped[i].equal(clip_boxes_to_image(b[i], h, w)));
  }
  EXPECT_THROW(box_iou(at::stack(a), b[0]), Error);
  EXPECT_THROW(clip_boxes_to_images(b[0], sizes), Error);
}

TEST(BatchedMatcher, PaddedRowsMatchNothingAndRowsEqualThePerImageMatcher) {
  at::manual_seed(6);
  for (bool low_quality : {false, true}) {
    Matcher matcher(0.7, 0.3, low_quality);
    const std::vector<int64_t> gt_counts = {4, 0, 9, 1};
    const int64_t g = 9, p = 120;
    auto predictions = testing::random_boxes(p, 200, 200, 4, 120);
    std::vector<at::Tensor> per_image;
    auto quality = at::full({4, g, p}, -1.0f);
    for (size_t i = 0; i < gt_counts.size(); ++i) {
      auto gt = testing::random_boxes(gt_counts[i], 200, 200, 4, 120);
      auto q = box_iou(gt, predictions);
      quality[static_cast<int64_t>(i)].narrow(0, 0, gt_counts[i]).copy_(q);
      per_image.push_back(matcher(q));
    }
    auto batched = matcher(quality);
    ASSERT_EQ(batched.sizes(), (at::IntArrayRef{4, p}));
    for (size_t i = 0; i < gt_counts.size(); ++i)
      EXPECT_TRUE(batched[static_cast<int64_t>(i)].equal(per_image[i]))
          << "image " << i << " low quality " << low_quality;
  }
  Matcher matcher(0.5, 0.5);
  EXPECT_TRUE(matcher(at::zeros({2, 0, 5}))
                  .equal(at::full({2, 5}, Matcher::kBelowLowThreshold, at::kLong)));
}

TEST(BatchedSampler, RowsAreSampledOnTheirOwnWithinTheBudget) {
  BalancedPositiveNegativeSampler sampler(64, 0.25, 9);
  // Row 0: plenty of both; row 1: few positives; row 2: nothing to sample; row 3: all ignored
  // but 10 negatives.
  auto labels = at::zeros({4, 500}, at::kLong);
  labels[0].narrow(0, 0, 100).fill_(1);
  labels[1].narrow(0, 0, 5).fill_(3);
  labels[2].fill_(-1);
  labels[3].fill_(-1);
  labels[3].narrow(0, 490, 10).fill_(0);
  auto [pos, neg] = sampler(labels);
  EXPECT_EQ(to_vector(pos.sum(1)), (std::vector<int64_t>{16, 5, 0, 0}));
  EXPECT_EQ(to_vector(neg.sum(1)), (std::vector<int64_t>{48, 59, 0, 10}));
  EXPECT_TRUE(pos.logical_and(labels < 1).any().item<bool>() == false);
  EXPECT_TRUE(neg.logical_and(labels != 0).any().item<bool>() == false);
}

TEST(BatchedSampler, SlotsHoldTheSamePicksPositivesFirst) {
  auto labels = at::zeros({3, 300}, at::kLong);
  labels[0].narrow(0, 10, 40).fill_(2);
  labels[1].narrow(0, 0, 200).fill_(-1);
  labels[2].narrow(0, 100, 3).fill_(1);
  BalancedPositiveNegativeSampler sampler(128, 0.25, 21);
  auto [pos, neg] = sampler(labels);
  auto s = sampled_slots(pos, neg, 128);
  ASSERT_EQ(s.index.sizes(), (at::IntArrayRef{3, 128}));
  for (int64_t r = 0; r < 3; ++r) {
    const auto num_pos = pos[r].sum().item<int64_t>();
    const auto num_sampled = num_pos + neg[r].sum().item<int64_t>();
    // Positives fill the first slots, then negatives, then unused slots.
    EXPECT_TRUE(s.positive[r].narrow(0, 0, num_pos).all().item<bool>());
    EXPECT_FALSE(s.positive[r].narrow(0, num_pos, 128 - num_pos).any().item<bool>());
    EXPECT_TRUE(s.sampled[r].narrow(0, 0, num_sampled).all().item<bool>());
    EXPECT_FALSE(s.sampled[r].narrow(0, num_sampled, 128 - num_sampled).any().item<bool>());
    // The same examples as the masks'.
    auto picked =
        at::zeros({300}, at::kBool).index_fill_(0, s.index[r].masked_select(s.sampled[r]), true);
    EXPECT_TRUE(picked.equal(pos[r].logical_or(neg[r]))) << "row " << r;
    auto picked_pos =
        at::zeros({300}, at::kBool).index_fill_(0, s.index[r].masked_select(s.positive[r]), true);
    EXPECT_TRUE(picked_pos.equal(pos[r])) << "row " << r;
  }
  // Fewer examples than slots: as many slots as examples.
  auto few = at::zeros({2, 50}, at::kBool);
  EXPECT_EQ(sampled_slots(few, few, 128).index.size(1), 50);
}

TEST(BatchedRoIs, BatchedBoxesPoolAsThePerImageList) {
  at::manual_seed(7);
  const std::vector<std::pair<int64_t, int64_t>> sizes = {{128, 128}, {120, 96}};
  std::vector<at::Tensor> features = {at::randn({2, 3, 32, 32}), at::randn({2, 3, 16, 16}),
                                      at::randn({2, 3, 8, 8}), at::randn({2, 3, 4, 4})};
  auto boxes = at::stack(
      {testing::random_boxes(20, 128, 128, 2, 120), testing::random_boxes(20, 96, 120, 2, 120)});
  MultiScaleRoIAlign pool(7, 2);
  auto batched = pool(features, boxes, sizes);
  auto listed = pool(features, std::vector<at::Tensor>{boxes[0], boxes[1]}, sizes);
  EXPECT_TRUE(batched.equal(listed));
  EXPECT_TRUE(boxes_to_rois(boxes).equal(boxes_to_rois({boxes[0], boxes[1]})));
}

}  // namespace
}  // namespace largedet::ops
