// Box geometry under mixed precision (docs/modeling.md, "Precision"): with half or bfloat16
// features, anchors, areas, IoUs, box coding, level mapping and the RoIs of RoIAlign stay in
// float32. In half, a 256 x 256 area (65536) is already inf and a 1000 px coordinate sits on a
// 0.5 px grid (8 px in bfloat16): the RPN would learn that large objects are background.
#include <gtest/gtest.h>

#include "largedet/ops/anchor_generator.h"
#include "largedet/ops/box_coder.h"
#include "largedet/ops/boxes.h"
#include "largedet/ops/matcher.h"
#include "largedet/ops/roi_align.h"
#include "ops_test_util.h"

namespace largedet::ops {
namespace {

const at::ScalarType kReduced[] = {at::kHalf, at::kBFloat16};

// Boxes of 300-1000 px (side) inside a 1344 x 1344 canvas.
at::Tensor large_boxes(int64_t n, uint64_t seed) {
  at::manual_seed(seed);
  auto xy = at::rand({n, 2}) * 300;
  auto wh = at::rand({n, 2}) * 700 + 300;
  return at::cat({xy, xy + wh}, 1);
}

TEST(GeometryDtype, LargeBoxesKeepTheirIouInReducedPrecision) {
  auto boxes = large_boxes(64, 1);
  // What half arithmetic gives: 256 x 256 overflows.
  auto square = at::tensor({0.f, 0.f, 256.f, 256.f}).view({1, 4});
  const auto half = square.to(at::kHalf);
  auto half_area =
      (half.select(1, 2) - half.select(1, 0)) * (half.select(1, 3) - half.select(1, 1));
  ASSERT_TRUE(at::isinf(half_area).all().item<bool>());
  EXPECT_EQ(box_area(half).item<float>(), 65536.f);

  auto reference = box_iou(boxes, boxes.roll(1, 0));
  for (auto dtype : kReduced) {
    SCOPED_TRACE(c10::toString(dtype));
    auto reduced = boxes.to(dtype);
    auto iou = box_iou(reduced, reduced.roll(1, 0));
    EXPECT_EQ(iou.scalar_type(), at::kFloat);
    // Exactly the float32 IoU of the rounded coordinates ...
    auto rounded = reduced.to(at::kFloat);
    EXPECT_TRUE(at::equal(iou, box_iou(rounded, rounded.roll(1, 0))));
    // ... which the rounding of the coordinates (at most 4 px of 300+) moves a little.
    EXPECT_TRUE(at::isfinite(iou).all().item<bool>());
    EXPECT_LT((iou - reference).abs().max().item<float>(), 0.05f);
    EXPECT_TRUE(at::allclose(at::diagonal(box_iou(reduced, reduced)), at::ones({64})));
    EXPECT_TRUE(at::equal(box_area(reduced), box_area(rounded)));
  }
}

TEST(GeometryDtype, AnchorsAreFloatWhateverTheFeaturesAndCached) {
  AnchorGenerator generator({{32}, {64}, {128}, {256}, {512}}, {{0.5, 1.0, 2.0}});
  std::vector<at::Tensor> features;
  for (int64_t s : {336, 168, 84, 42, 21}) features.push_back(at::zeros({1, 2, s, s}));
  const auto reference = generator({1344, 1344}, features);
  ASSERT_EQ(reference.scalar_type(), at::kFloat);
  for (auto dtype : kReduced) {
    SCOPED_TRACE(c10::toString(dtype));
    std::vector<at::Tensor> reduced;
    for (const auto& f : features) reduced.push_back(f.to(dtype));
    auto anchors = generator({1344, 1344}, reduced);
    EXPECT_EQ(anchors.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::equal(anchors, reference));
  }
  // The same grids give the same tensor; another size other anchors.
  EXPECT_EQ(generator({1344, 1344}, features).data_ptr(), reference.data_ptr());
  std::vector<at::Tensor> smaller;
  for (int64_t s : {200, 100, 50, 25, 13}) smaller.push_back(at::zeros({1, 2, s, s}));
  EXPECT_NE(generator({800, 800}, smaller).size(0), reference.size(0));
  // A copy of the generator shares the cache.
  AnchorGenerator copy = generator;
  EXPECT_EQ(copy({1344, 1344}, features).data_ptr(), reference.data_ptr());
}

// The RPN's labels and matched boxes on reduced-precision features equal the float32 run's
// exactly: anchors, IoUs and matching are the same float32 computations.
TEST(GeometryDtype, AnchorLabelsAndMatchedBoxesEqualTheFloatRun) {
  AnchorGenerator generator({{32}, {64}, {128}, {256}, {512}}, {{0.5, 1.0, 2.0}});
  const Matcher matcher(0.7, 0.3, /*allow_low_quality_matches=*/true);
  const BoxCoder coder({1, 1, 1, 1});
  auto gt = large_boxes(6, 2);
  auto run = [&](at::ScalarType dtype) {
    std::vector<at::Tensor> features;
    for (int64_t s : {336, 168, 84, 42, 21}) features.push_back(at::zeros({1, 2, s, s}, dtype));
    auto anchors = generator({1344, 1344}, features);
    auto matches = matcher(box_iou(gt, anchors));
    auto matched = gt.index_select(0, matches.clamp_min(0));
    return std::make_tuple(matches, coder.encode(matched, anchors));
  };
  const auto [labels, targets] = run(at::kFloat);
  // Large objects have positive anchors (in half arithmetic, IoU 0 would leave them none).
  ASSERT_GE(labels.ge(0).sum().item<int64_t>(), 20);
  for (auto dtype : kReduced) {
    SCOPED_TRACE(c10::toString(dtype));
    const auto [l, t] = run(dtype);
    EXPECT_TRUE(at::equal(l, labels));
    EXPECT_TRUE(at::equal(t, targets));
  }
}

TEST(GeometryDtype, BoxCodingRunsInFloat) {
  const BoxCoder coder({10, 10, 5, 5});
  auto anchors = large_boxes(32, 3);
  auto gt = large_boxes(32, 4);
  at::manual_seed(5);
  auto deltas = at::randn({32, 8}) * 0.5;
  for (auto dtype : kReduced) {
    SCOPED_TRACE(c10::toString(dtype));
    auto decoded = coder.decode(deltas.to(dtype), anchors);
    EXPECT_EQ(decoded.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::equal(decoded, coder.decode(deltas.to(dtype).to(at::kFloat), anchors)));
    // Anchors in reduced precision: the ground truth is not rounded to their dtype.
    auto encoded = coder.encode(gt, anchors.to(dtype));
    EXPECT_EQ(encoded.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::equal(encoded, coder.encode(gt, anchors.to(dtype).to(at::kFloat))));
    EXPECT_EQ(clip_boxes_to_image(decoded.reshape({-1, 4}).to(dtype), 800, 1333).scalar_type(),
              at::kFloat);
  }
}

// RoIs are not rounded to the features' dtype: pooling half features with float boxes equals
// pooling the same values held in float32, up to the rounding of the output to the features'
// dtype; rounding the RoIs would move samples by up to 0.5 px (half) or 4 px (bfloat16) above
// 512 px.
TEST(GeometryDtype, MultiScaleRoIAlignKeepsFloatRois) {
  at::manual_seed(6);
  std::vector<at::Tensor> features;
  for (int64_t s : {336, 168, 84, 42}) features.push_back(at::randn({1, 4, s, s}));
  std::vector<at::Tensor> boxes = {large_boxes(16, 7).add_(0.3)};
  const std::vector<std::pair<int64_t, int64_t>> sizes = {{1344, 1344}};
  MultiScaleRoIAlign pooler(7, 2);
  for (auto dtype : kReduced) {
    SCOPED_TRACE(c10::toString(dtype));
    std::vector<at::Tensor> reduced, widened;
    for (const auto& f : features) {
      reduced.push_back(f.to(dtype));
      widened.push_back(f.to(dtype).to(at::kFloat));
    }
    auto pooled = pooler(reduced, boxes, sizes);
    EXPECT_EQ(pooled.scalar_type(), dtype);
    auto expected = pooler(widened, boxes, sizes);
    const double ulp = dtype == at::kHalf ? 1e-3 : 8e-3;  // the output's own rounding
    EXPECT_TRUE(at::allclose(pooled.to(at::kFloat), expected, ulp, 1e-3))
        << (pooled.to(at::kFloat) - expected).abs().max();
  }
}

}  // namespace
}  // namespace largedet::ops
