// paste_masks_in_image (torchvision's paste) against a double-precision reference and a case
// worked out by hand, and its two implementations (CPU kernel, device composition) against each
// other.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "largedet/core/error.h"
#include "largedet/ops/paste_masks.h"
#include "ops_test_util.h"

namespace largedet::ops {
namespace {

// torchvision's paste, written out plainly: the box grown by (M' + 2) / M' and truncated (in float,
// in torchvision's order, so that the integer boxes agree), then each pixel of the integer box
// interpolated in double from the zero-bordered mask with upsample_bilinear2d's rule
// (align_corners=false: src = max((in / out) * (i + 0.5) - 0.5, 0)).
at::Tensor reference_paste(const at::Tensor& masks, const at::Tensor& boxes, int64_t h, int64_t w) {
  auto m = masks.to(at::kDouble).contiguous();
  auto b = boxes.to(at::kFloat).contiguous();
  const int64_t mh = m.size(1), mw = m.size(2), ph = mh + 2, pw = mw + 2;
  auto out = at::zeros({m.size(0), h, w}, at::kDouble);
  auto o = out.accessor<double, 3>();
  auto ma = m.accessor<double, 3>();
  auto ba = b.accessor<float, 2>();
  auto padded = [&](int64_t n, int64_t r, int64_t c) {
    return (r < 1 || r > mh || c < 1 || c > mw) ? 0.0 : ma[n][r - 1][c - 1];
  };
  struct Tap {
    int64_t lo, hi;
    double w_hi;
  };
  auto tap = [](int64_t i, int64_t in, int64_t out_size) {
    const double src = std::max(double(in) / double(out_size) * (double(i) + 0.5) - 0.5, 0.0);
    const int64_t lo = std::min(int64_t(std::floor(src)), in - 1);
    return Tap{lo, lo < in - 1 ? lo + 1 : lo, std::clamp(src - double(lo), 0.0, 1.0)};
  };
  const float scale = float(double(mw + 2) / double(mw));
  for (int64_t n = 0; n < m.size(0); ++n) {
    const float w_half = (ba[n][2] - ba[n][0]) * 0.5f * scale;
    const float h_half = (ba[n][3] - ba[n][1]) * 0.5f * scale;
    const float x_c = (ba[n][2] + ba[n][0]) * 0.5f, y_c = (ba[n][3] + ba[n][1]) * 0.5f;
    const auto x0 = int64_t(x_c - w_half), x1 = int64_t(x_c + w_half);
    const auto y0 = int64_t(y_c - h_half), y1 = int64_t(y_c + h_half);
    const int64_t bw = std::max<int64_t>(x1 - x0 + 1, 1), bh = std::max<int64_t>(y1 - y0 + 1, 1);
    for (int64_t y = std::max<int64_t>(y0, 0); y < std::min(y1 + 1, h); ++y) {
      const Tap ty = tap(y - y0, ph, bh);
      for (int64_t x = std::max<int64_t>(x0, 0); x < std::min(x1 + 1, w); ++x) {
        const Tap tx = tap(x - x0, pw, bw);
        auto row = [&](int64_t r) {
          return padded(n, r, tx.lo) * (1 - tx.w_hi) + padded(n, r, tx.hi) * tx.w_hi;
        };
        o[n][y][x] = row(ty.lo) * (1 - ty.w_hi) + row(ty.hi) * ty.w_hi;
      }
    }
  }
  return out;
}

at::Tensor test_boxes() {
  // Random boxes, plus: partly outside, wholly outside, zero width, inverted, sub-pixel, whole
  // image, negative coordinates (truncated toward zero).
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

TEST(PasteMasks, DeviceImplementationAgreesWithKernel) {
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

// A 2x2 mask of ones on the box (0, 0, 4, 4): grown by 4 / 2 to (-2, -2, 6, 6), the padded 4x4
// mask resized to 9x9. Along each axis src = 4/9 (i + 0.5) - 0.5 gives the profile
// 0, 1/6, 11/18, 1, 1, 1, 11/18, 1/6, 0 over pixels -2..6; the paste is its outer product.
TEST(PasteMasks, HandWorkedCase) {
  auto out = paste_masks_in_image(at::ones({1, 2, 2}),
                                  at::tensor({0.f, 0.f, 4.f, 4.f}).view({1, 4}), 6, 6, -1)[0];
  auto profile = at::tensor({11.0 / 18, 1.0, 1.0, 1.0, 11.0 / 18, 1.0 / 6}, at::kDouble);
  auto expected = profile.unsqueeze(1) * profile.unsqueeze(0);
  EXPECT_TRUE(at::allclose(out.to(at::kDouble), expected, 0, 1e-6)) << out;
  auto aten = detail::paste_masks_in_image_aten(
      at::ones({1, 2, 2}), at::tensor({0.f, 0.f, 4.f, 4.f}).view({1, 4}), 6, 6, -1)[0];
  EXPECT_TRUE(at::allclose(aten.to(at::kDouble), expected, 0, 1e-6)) << aten;
}

TEST(PasteMasks, EmptyInputsAndErrors) {
  EXPECT_EQ(paste_masks_in_image(at::zeros({0, 28, 28}), at::zeros({0, 4}), 20, 30).sizes(),
            (std::vector<int64_t>{0, 20, 30}));
  EXPECT_EQ(paste_masks_in_image(at::ones({2, 28, 28}), at::ones({2, 4}), 0, 0).numel(), 0);
  EXPECT_THROW(paste_masks_in_image(at::zeros({2, 28, 28}), at::zeros({3, 4}), 20, 30), Error);
  EXPECT_THROW(paste_masks_in_image(at::zeros({2, 3, 28, 28}), at::zeros({2, 4}), 20, 30), Error);
  EXPECT_THROW(paste_masks_in_image(at::zeros({2, 0, 28}), at::zeros({2, 4}), 20, 30), Error);
}

}  // namespace
}  // namespace largedet::ops
