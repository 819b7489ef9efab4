// paste_masks_in_image against a double-precision reference, and its two implementations against
// each other.
#include <gtest/gtest.h>

#include <cmath>

#include "largedet/core/error.h"
#include "largedet/ops/paste_masks.h"
#include "ops_test_util.h"

namespace largedet::ops {
namespace {

// Pixel centres inside the box sample the mask, stretched over the box, bilinearly with zeros
// outside (grid_sample, align_corners=false); other pixels are 0.
at::Tensor reference_paste(const at::Tensor& masks, const at::Tensor& boxes, int64_t h, int64_t w) {
  auto m = masks.to(at::kDouble).contiguous();
  auto b = boxes.to(at::kDouble).contiguous();
  const int64_t mh = m.size(1), mw = m.size(2);
  auto out = at::zeros({m.size(0), h, w}, at::kDouble);
  auto o = out.accessor<double, 3>();
  auto ma = m.accessor<double, 3>();
  auto ba = b.accessor<double, 2>();
  auto at_cell = [&](int64_t n, int64_t y, int64_t x) {
    return (y < 0 || y >= mh || x < 0 || x >= mw) ? 0.0 : ma[n][y][x];
  };
  for (int64_t n = 0; n < m.size(0); ++n) {
    const double x0 = ba[n][0], y0 = ba[n][1], x1 = ba[n][2], y1 = ba[n][3];
    if (!(x1 > x0) || !(y1 > y0)) continue;
    for (int64_t y = 0; y < h; ++y) {
      const double cy = y + 0.5;
      if (cy < y0 || cy > y1) continue;
      const double iy = (cy - y0) / (y1 - y0) * mh - 0.5;
      for (int64_t x = 0; x < w; ++x) {
        const double cx = x + 0.5;
        if (cx < x0 || cx > x1) continue;
        const double ix = (cx - x0) / (x1 - x0) * mw - 0.5;
        const auto fy = int64_t(std::floor(iy)), fx = int64_t(std::floor(ix));
        const double ly = iy - fy, lx = ix - fx;
        o[n][y][x] = (1 - ly) * ((1 - lx) * at_cell(n, fy, fx) + lx * at_cell(n, fy, fx + 1)) +
                     ly * ((1 - lx) * at_cell(n, fy + 1, fx) + lx * at_cell(n, fy + 1, fx + 1));
      }
    }
  }
  return out;
}

at::Tensor test_boxes() {
  // Random boxes, plus: partly outside, wholly outside, zero width, inverted, sub-pixel, whole
  // image.
  auto boxes = testing::random_boxes(20, 90, 70, 3, 60);
  auto edge = at::tensor({-10.f, -5.f,  20.f,  30.f,  80.f, 60.f, 130.f, 90.f, 200.f, 200.f,
                          220.f, 230.f, 10.f,  10.f,  10.f, 30.f, 30.f,  30.f, 20.f,  20.f,
                          40.2f, 40.2f, 40.7f, 40.9f, 0.f,  0.f,  90.f,  70.f});
  return at::cat({boxes, edge.view({-1, 4})});
}

TEST(PasteMasks, ProbabilitiesMatchDoubleReference) {
  at::manual_seed(30);
  auto boxes = test_boxes();
  auto masks = at::rand({boxes.size(0), 28, 28});
  auto ref = reference_paste(masks, boxes, 70, 90);
  auto probs = paste_masks_in_image(masks.unsqueeze(1), boxes, 70, 90, /*threshold=*/-1);
  ASSERT_EQ(probs.sizes(), (std::vector<int64_t>{boxes.size(0), 70, 90}));
  EXPECT_TRUE(at::allclose(probs.to(at::kDouble), ref, 0, 1e-5))
      << (probs.to(at::kDouble) - ref).abs().max();
  // Thresholded: equal wherever the reference is not within rounding of the threshold.
  auto binary = paste_masks_in_image(masks, boxes, 70, 90, 0.5);
  EXPECT_EQ(binary.scalar_type(), at::kBool);
  auto decided = (ref - 0.5).abs() > 1e-5;
  EXPECT_TRUE(at::equal(binary.masked_select(decided), (ref >= 0.5).masked_select(decided)));
}

TEST(PasteMasks, GridSampleImplementationAgreesWithKernel) {
  at::manual_seed(31);
  auto boxes = test_boxes();
  auto masks = at::rand({boxes.size(0), 14, 21});  // non-square masks too
  auto kernel = paste_masks_in_image(masks, boxes, 70, 90, -1);
  auto aten = detail::paste_masks_in_image_aten(masks, boxes, 70, 90, -1);
  EXPECT_TRUE(at::allclose(kernel, aten, 0, 1e-5)) << (kernel - aten).abs().max();
  auto ref = reference_paste(masks, boxes, 70, 90);
  auto decided = (ref - 0.3).abs() > 1e-5;
  auto a = detail::paste_masks_in_image_aten(masks, boxes, 70, 90, 0.3);
  auto k = paste_masks_in_image(masks, boxes, 70, 90, 0.3);
  EXPECT_TRUE(at::equal(a.masked_select(decided), k.masked_select(decided)));
}

TEST(PasteMasks, FullMaskFillsExactlyItsBox) {
  auto masks = at::ones({1, 28, 28});
  auto boxes = at::tensor({2.f, 3.f, 10.f, 8.f}).view({1, 4});
  auto out = paste_masks_in_image(masks, boxes, 12, 15, 0.5);
  auto expected = at::zeros({1, 12, 15}, at::kBool);
  expected.slice(1, 3, 8).slice(2, 2, 10).fill_(true);
  EXPECT_TRUE(at::equal(out, expected)) << out;
}

TEST(PasteMasks, EmptyInputsAndErrors) {
  EXPECT_EQ(paste_masks_in_image(at::zeros({0, 28, 28}), at::zeros({0, 4}), 20, 30).sizes(),
            (std::vector<int64_t>{0, 20, 30}));
  EXPECT_EQ(paste_masks_in_image(at::ones({2, 28, 28}), at::ones({2, 4}), 0, 0).numel(), 0);
  EXPECT_THROW(paste_masks_in_image(at::zeros({2, 28, 28}), at::zeros({3, 4}), 20, 30), Error);
  EXPECT_THROW(paste_masks_in_image(at::zeros({2, 3, 28, 28}), at::zeros({2, 4}), 20, 30), Error);
}

}  // namespace
}  // namespace largedet::ops
