// nms / batched_nms against a brute-force reference and against torchvision's kernel.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "largedet/core/error.h"
#include "largedet/ops/nms.h"
#include "ops_test_util.h"

namespace largedet::ops {
namespace {

using testing::to_vector;

// The definition: visit by descending score (ties by index), keep a box unless a kept box of the
// same class overlaps it with IoU > threshold. Plain loops in double.
std::vector<int64_t> reference_nms(const at::Tensor& boxes, const at::Tensor& scores,
                                   const at::Tensor& classes, double threshold) {
  auto b = boxes.to(at::kDouble).contiguous();
  auto s = scores.to(at::kDouble).contiguous();
  auto c = classes.defined() ? classes.to(at::kLong).contiguous()
                             : at::zeros({boxes.size(0)}, at::kLong);
  auto ba = b.accessor<double, 2>();
  auto sa = s.accessor<double, 1>();
  auto ca = c.accessor<int64_t, 1>();
  std::vector<int64_t> order(boxes.size(0));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return sa[i] > sa[j]; });
  std::vector<int64_t> keep;
  for (int64_t i : order) {
    bool suppressed = false;
    for (int64_t k : keep) {
      if (ca[k] != ca[i]) continue;
      const double w = std::max(0.0, std::min(ba[k][2], ba[i][2]) - std::max(ba[k][0], ba[i][0]));
      const double h = std::max(0.0, std::min(ba[k][3], ba[i][3]) - std::max(ba[k][1], ba[i][1]));
      const double inter = w * h;
      const double area_k = (ba[k][2] - ba[k][0]) * (ba[k][3] - ba[k][1]);
      const double area_i = (ba[i][2] - ba[i][0]) * (ba[i][3] - ba[i][1]);
      if (inter / (area_k + area_i - inter) > threshold) {
        suppressed = true;
        break;
      }
    }
    if (!suppressed) keep.push_back(i);
  }
  return keep;
}

TEST(Nms, MatchesReferenceOnRandomBoxes) {
  at::manual_seed(10);
  for (int64_t n : {1, 2, 17, 500, 2000}) {
    for (double threshold : {0.0, 0.3, 0.5, 0.7, 1.0}) {
      auto boxes = testing::random_boxes(n, 300, 300, 1, 120, at::kDouble);
      auto scores = at::rand({n}, at::kDouble);
      EXPECT_EQ(to_vector(nms(boxes, scores, threshold)),
                reference_nms(boxes, scores, at::Tensor(), threshold))
          << "n " << n << " threshold " << threshold;
    }
  }
}

TEST(Nms, EqualScoresAreVisitedInIndexOrder) {
  // Three identical boxes and a distinct one, all with the same score: the first copy wins.
  auto boxes = at::tensor({0.f, 0.f, 10.f, 10.f, 50.f, 50.f, 60.f, 60.f, 0.f, 0.f, 10.f, 10.f, 0.f,
                           0.f, 10.f, 10.f})
                   .view({4, 4});
  auto scores = at::full({4}, 0.5f);
  EXPECT_EQ(to_vector(nms(boxes, scores, 0.5)), (std::vector<int64_t>{0, 1}));
  // Quantised scores: many ties among overlapping boxes.
  at::manual_seed(11);
  auto many = testing::random_boxes(800, 200, 200, 5, 60, at::kDouble);
  auto tied = (at::rand({800}, at::kDouble) * 8).floor();
  EXPECT_EQ(to_vector(nms(many, tied, 0.4)), reference_nms(many, tied, at::Tensor(), 0.4));
}

TEST(Nms, EmptyAndDegenerateBoxes) {
  EXPECT_EQ(nms(at::zeros({0, 4}), at::zeros({0}), 0.5).numel(), 0);
  EXPECT_EQ(nms(at::zeros({0, 4}), at::zeros({0}), 0.5).scalar_type(), at::kLong);
  // Zero-area and inverted boxes: IoU is 0/0 or negative-area nonsense; nothing crashes and the
  // result follows the definition (the reference uses the same formula).
  auto boxes = at::tensor({5.,  5.,  5.,  5.,  5., 5., 5., 5., 0., 0.,
                           10., 10., 10., 10., 0., 0., 1., 1., 9., 9.},
                          at::kDouble)
                   .view({-1, 4});
  auto scores = at::tensor({0.9, 0.8, 0.7, 0.6, 0.5}, at::kDouble);
  EXPECT_EQ(to_vector(nms(boxes, scores, 0.5)), reference_nms(boxes, scores, at::Tensor(), 0.5));
  EXPECT_THROW(nms(at::zeros({3, 4}), at::zeros({2}), 0.5), Error);
  EXPECT_THROW(nms(at::zeros({3, 5}), at::zeros({3}), 0.5), Error);
}

TEST(Nms, FloatAndHalfInputsAreAccepted) {
  at::manual_seed(12);
  auto boxes = testing::random_boxes(300, 300, 300, 4, 100);
  auto scores = at::rand({300});
  auto keep = nms(boxes, scores, 0.5);
  EXPECT_EQ(to_vector(keep), reference_nms(boxes, scores, at::Tensor(), 0.5));
  auto half = nms(boxes.to(at::kHalf), scores.to(at::kHalf), 0.5);
  EXPECT_EQ(half.scalar_type(), at::kLong);
  EXPECT_GT(half.numel(), 0);
}

TEST(BatchedNms, MatchesPerClassReference) {
  at::manual_seed(13);
  for (int64_t n : {0, 1, 50, 1500}) {
    auto boxes = testing::random_boxes(n, 200, 200, 5, 100, at::kDouble);
    auto scores = at::rand({n}, at::kDouble);
    auto classes = at::randint(0, 5, {n}, at::kLong);
    for (double threshold : {0.3, 0.6}) {
      auto keep = batched_nms(boxes, scores, classes, threshold);
      EXPECT_EQ(to_vector(keep), reference_nms(boxes, scores, classes, threshold)) << n;
    }
  }
  // Identical boxes of different classes both survive.
  auto same = at::tensor({0.f, 0.f, 10.f, 10.f, 0.f, 0.f, 10.f, 10.f}).view({2, 4});
  EXPECT_EQ(to_vector(batched_nms(same, at::tensor({0.5f, 0.9f}), at::tensor({1, 2}), 0.5)),
            (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(to_vector(batched_nms(same, at::tensor({0.5f, 0.9f}), at::tensor({3, 3}), 0.5)),
            (std::vector<int64_t>{1}));
}

// The same kept indices in the same order as torchvision::nms on float boxes.
TEST(Nms, MatchesTorchvision) {
  LARGEDET_REQUIRE_TORCHVISION();
  at::manual_seed(14);
  for (int64_t n : {10, 1000, 5000}) {
    for (double threshold : {0.3, 0.5, 0.7}) {
      auto boxes = testing::random_boxes(n, 800, 800, 8, 300);
      auto scores = at::rand({n});
      if (n == 1000) scores = (scores * 20).floor();  // ties
      auto ours = nms(boxes, scores, threshold);
      auto theirs = torchvision::nms(boxes, scores, threshold);
      EXPECT_TRUE(at::equal(ours, theirs)) << "n " << n << " threshold " << threshold;
    }
  }
}

TEST(BatchedNms, MatchesTorchvisionPerClassLoop) {
  LARGEDET_REQUIRE_TORCHVISION();
  at::manual_seed(15);
  auto boxes = testing::random_boxes(3000, 800, 800, 8, 300);
  auto scores = at::rand({3000});
  auto classes = at::randint(0, 20, {3000}, at::kLong);
  // torchvision's _batched_nms_vanilla: nms per class, then all kept by descending score.
  std::vector<at::Tensor> kept;
  for (int64_t c = 0; c < 20; ++c) {
    auto idx = at::nonzero(classes == c).view(-1);
    kept.push_back(idx.index_select(
        0, torchvision::nms(boxes.index_select(0, idx), scores.index_select(0, idx), 0.5)));
  }
  auto all = at::cat(kept);
  auto order = std::get<1>(scores.index_select(0, all).sort(true, 0, true));
  EXPECT_TRUE(at::equal(batched_nms(boxes, scores, classes, 0.5), all.index_select(0, order)));
}

}  // namespace
}  // namespace largedet::ops
