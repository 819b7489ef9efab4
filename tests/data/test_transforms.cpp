// Transforms: resize sizes as detectron2, and boxes and masks following resize and flip exactly
// (the crop: test_crop.cpp). (The pixels' resampling is the model's:
// tests/modeling/preprocess_test.cpp.)
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "largedet/data/transforms.h"
#include "largedet/evaluation/rle.h"
#include "largedet/ops/mask_targets.h"

namespace largedet::data {
namespace {

TEST(Transforms, ResizeShortestEdgeSizes) {
  using P = std::pair<int, int>;
  EXPECT_EQ(resize_shortest_edge_size(480, 640, 800, 1333), P(800, 1067));
  EXPECT_EQ(resize_shortest_edge_size(640, 480, 800, 1333), P(1067, 800));
  // The long side limit wins: 100 x 1000 at short side 800 would be 8000 long.
  EXPECT_EQ(resize_shortest_edge_size(100, 1000, 800, 1333), P(133, 1333));
  EXPECT_EQ(resize_shortest_edge_size(500, 500, 600, 0), P(600, 600));
}

Instance rect_instance(float x1, float y1, float x2, float y2) {
  Instance i;
  i.box = {x1, y1, x2, y2};
  i.label = 2;
  i.segmentation.kind = evaluation::Segmentation::Kind::kPolygons;
  i.segmentation.polygons = {{x1, y1, x2, y1, x2, y2, x1, y2}};
  return i;
}

TEST(Transforms, BoxesFollowResizeAndFlip) {
  const std::vector<Instance> inst = {rect_instance(10, 20, 30, 40)};
  TransformParams p{100, 50, 200, 150, false};  // sx = 2, sy = 3
  Target t = transform_instances(inst, false, p);
  EXPECT_TRUE(at::equal(t.boxes, at::tensor({20.f, 60.f, 60.f, 120.f}).view({1, 4})));
  EXPECT_EQ(t.labels.item<int64_t>(), 2);
  p.flip = true;
  t = transform_instances(inst, false, p);
  // x -> 200 - x, so [20, 60] becomes [140, 180].
  EXPECT_TRUE(at::equal(t.boxes, at::tensor({140.f, 60.f, 180.f, 120.f}).view({1, 4})));
}

TEST(Transforms, NormalisedBoxesScaleToTheOutputSize) {
  Instance i;
  i.box = {0.1f, 0.2f, 0.5f, 1.0f};
  i.label = 1;
  TransformParams p{0, 0, 200, 100, false};
  const Target t = transform_instances({i}, true, p);
  EXPECT_TRUE(at::allclose(t.boxes, at::tensor({20.f, 20.f, 100.f, 100.f}).view({1, 4})));
}

// The image's mask as the model sees it: the edges rasterised at the pixel centres of the whole
// (square) image.
at::Tensor raster(const Target& t, int size) {
  const auto box = at::tensor({0.f, 0.f, float(size), float(size)}).view({1, 4});
  return ops::rasterize_mask_edges(t.mask_edges, at::zeros({1}, at::kLong), box, size)[0].to(
      at::kByte);
}

TEST(Transforms, MasksFollowResizeAndFlipExactly) {
  // A rectangle with integer corners rasterises to exactly its pixels; an integer scale 2 maps
  // each pixel to a 2 x 2 block, and the flip mirrors the columns.
  const std::vector<Instance> inst = {rect_instance(3, 2, 7, 5)};
  TargetOptions masks;
  masks.masks = true;
  TransformParams p{10, 10, 20, 20, false};
  Target t = transform_instances(inst, false, p, masks);
  ASSERT_EQ(t.mask_edges.sizes(), (at::IntArrayRef{1, 2, 3}));  // a rectangle: two edges
  at::Tensor expected = at::zeros({20, 20}, at::kByte);
  expected.slice(0, 4, 10).slice(1, 6, 14).fill_(1);
  EXPECT_TRUE(at::equal(raster(t, 20), expected)) << raster(t, 20);
  p.flip = true;
  t = transform_instances(inst, false, p, masks);
  EXPECT_TRUE(at::equal(raster(t, 20), expected.flip({1})));
  // The mask's extent equals the transformed box.
  const auto cols = raster(t, 20).sum(0).nonzero();
  EXPECT_EQ(cols.min().item<int64_t>(), static_cast<int64_t>(t.boxes[0][0].item<float>()));
  EXPECT_EQ(cols.max().item<int64_t>() + 1, static_cast<int64_t>(t.boxes[0][2].item<float>()));
}

TEST(Transforms, RleMasksAreResizedToo) {
  Instance i;
  i.box = {0, 0, 2, 2};
  i.label = 1;
  i.segmentation.kind = evaluation::Segmentation::Kind::kRle;
  // 4 x 4 mask, column-major: first two columns' top two pixels.
  i.segmentation.rle = {4, 4, {0, 2, 2, 2, 10}};
  TargetOptions masks;
  masks.masks = true;
  const Target t = transform_instances({i}, false, {4, 4, 8, 8, false}, masks);
  at::Tensor expected = at::zeros({8, 8}, at::kByte);
  expected.slice(0, 0, 4).slice(1, 0, 4).fill_(1);
  EXPECT_TRUE(at::equal(raster(t, 8), expected)) << raster(t, 8);
}

// The edges of any mask give the mask back exactly at its pixel centres (pycocotools' decoding of
// the same RLE is the reference), with far fewer numbers than pixels.
TEST(Transforms, MaskEdgesGiveBackTheMaskExactly) {
  uint64_t seed = 11;
  for (int trial = 0; trial < 20; ++trial) {
    // A random polygon of 3..12 vertices in a 40 x 40 image, rasterised by pycocotools' rule.
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    const int n = 3 + static_cast<int>((seed >> 40) % 10);
    std::vector<double> polygon;
    for (int k = 0; k < 2 * n; ++k) {
      seed = seed * 6364136223846793005ull + 1442695040888963407ull;
      polygon.push_back(static_cast<double>((seed >> 33) % 4000) / 100.0);
    }
    const evaluation::Rle rle = evaluation::rle_from_polygon(polygon, 40, 40);
    const auto decoded = evaluation::rle_decode(rle);
    const at::Tensor expected =
        at::from_blob(const_cast<uint8_t*>(decoded.data()), {40, 40}, at::kByte).t();
    Target t;
    const auto edges = mask_edges(rle);
    t.mask_edges = at::zeros({1, static_cast<int64_t>(edges.size()), 3});
    for (size_t j = 0; j < edges.size(); ++j) {
      t.mask_edges[0][j][0] = edges[j].x;
      t.mask_edges[0][j][1] = edges[j].y0;
      t.mask_edges[0][j][2] = edges[j].y1;
    }
    EXPECT_TRUE(at::equal(raster(t, 40), expected)) << "trial " << trial;
    EXPECT_LT(edges.size() * 3, 40u * 40u / 4) << "trial " << trial;
  }
}

TEST(Transforms, CrowdInstancesAreDroppedUnlessKept) {
  Instance crowd = rect_instance(0, 0, 5, 5);
  crowd.iscrowd = true;
  const std::vector<Instance> inst = {rect_instance(1, 1, 2, 2), crowd};
  TransformParams p{10, 10, 10, 10, false};
  EXPECT_EQ(transform_instances(inst, false, p).size(), 1);
  TargetOptions keep;
  keep.keep_crowd = true;
  EXPECT_EQ(transform_instances(inst, false, p, keep).size(), 2);
}

}  // namespace
}  // namespace largedet::data
