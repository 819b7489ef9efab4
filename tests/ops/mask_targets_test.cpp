// rasterize_mask_edges: each RoI's target is the mask at its bin centres, against a direct lookup
// in the bitmap the edges came from; exact under bf16 autocast too.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <vector>

#include "largedet/ops/autocast.h"
#include "largedet/ops/mask_targets.h"

namespace largedet::ops {
namespace {

// Unit-height edges from a [H, W] bitmap: one per row and change between neighbouring columns
// (the simplest construction; the data layer's merges vertical runs).
at::Tensor row_edges(const at::Tensor& bitmap) {
  std::vector<float> e;
  const auto b = bitmap.accessor<uint8_t, 2>();
  const int64_t H = bitmap.size(0), W = bitmap.size(1);
  for (int64_t y = 0; y < H; ++y) {
    for (int64_t x = 0; x <= W; ++x) {
      const bool left = x > 0 && b[y][x - 1], right = x < W && b[y][x];
      if (left == right) continue;
      e.insert(e.end(), {float(x), float(y), float(y + 1)});
    }
  }
  return at::tensor(e).view({-1, 3});
}

TEST(MaskTargets, RoiTargetsAreTheBitmapAtTheBinCentres) {
  at::manual_seed(4);
  const int64_t H = 30, W = 40, M = 14;
  // Two instances: random blobs (a thresholded smooth field), different edge counts, padded.
  std::vector<at::Tensor> bitmaps, edges;
  for (int k = 0; k < 2; ++k) {
    auto field = at::upsample_bilinear2d(at::rand({1, 1, 6, 8}), {H, W}, false)[0][0];
    bitmaps.push_back((field > 0.5).to(at::kByte));
    edges.push_back(row_edges(bitmaps.back()));
  }
  const int64_t E = std::max(edges[0].size(0), edges[1].size(0));
  auto padded = at::zeros({2, E, 3});
  for (int k = 0; k < 2; ++k) padded[k].narrow(0, 0, edges[k].size(0)).copy_(edges[k]);
  // RoIs with fractional corners, partly outside the image, and one thinner than a pixel.
  const auto boxes = at::tensor({2.3f, 1.7f, 30.9f, 25.2f, -5.f, -3.f, 20.f, 12.f, 10.f, 5.f, 10.4f,
                                 29.f, 0.f, 0.f, 40.f, 30.f})
                         .view({4, 4});
  const auto instances = at::tensor(std::vector<int64_t>{0, 1, 0, 1});
  const auto out = rasterize_mask_edges(padded, instances, boxes, M);
  ASSERT_EQ(out.sizes(), (at::IntArrayRef{4, M, M}));
  for (int64_t r = 0; r < 4; ++r) {
    const auto b = boxes[r];
    const double x1 = b[0].item<float>(), y1 = b[1].item<float>();
    const double w = std::max(b[2].item<float>() - x1, 1.0),
                 h = std::max(b[3].item<float>() - y1, 1.0);
    const auto bitmap = bitmaps[instances[r].item<int64_t>()].accessor<uint8_t, 2>();
    int64_t wrong = 0;
    for (int64_t i = 0; i < M; ++i) {
      for (int64_t j = 0; j < M; ++j) {
        const double px = x1 + (j + 0.5) * w / M, py = y1 + (i + 0.5) * h / M;
        const auto fx = static_cast<int64_t>(std::floor(px)),
                   fy = static_cast<int64_t>(std::floor(py));
        const float expected = fx >= 0 && fy >= 0 && fx < W && fy < H ? bitmap[fy][fx] : 0;
        wrong += out[r][i][j].item<float>() != expected;
      }
    }
    EXPECT_EQ(wrong, 0) << "RoI " << r;
  }
  {
    AutocastGuard bf16(true, at::kCPU, at::kBFloat16);
    EXPECT_TRUE(at::equal(rasterize_mask_edges(padded, instances, boxes, M), out));
  }
  EXPECT_EQ(
      rasterize_mask_edges(padded, instances.narrow(0, 0, 0), boxes.narrow(0, 0, 0), M).sizes(),
      (at::IntArrayRef{0, M, M}));
}

}  // namespace
}  // namespace largedet::ops
