// Box utilities and BoxCoder against double-precision references written here.
#include <gtest/gtest.h>

#include <cmath>

#include "largedet/core/error.h"
#include "largedet/ops/box_coder.h"
#include "largedet/ops/boxes.h"
#include "ops_test_util.h"

namespace largedet::ops {
namespace {

using testing::random_boxes;

// Boxes with the awkward cases: zero width, zero height, a point, inverted, outside the image.
at::Tensor edge_boxes() {
  return at::tensor({0., 0., 10., 10., 5., 5., 5.,   20.,  3.,   3.,   13., 3., 7.,  7.,
                     7., 7., 10., 10., 2., 2., -30., -30., -10., -10., 0.,  0., 10., 10.},
                    at::kDouble)
      .view({-1, 4});
}

double ref_iou(const double* a, const double* b) {
  const double iw = std::max(0.0, std::min(a[2], b[2]) - std::max(a[0], b[0]));
  const double ih = std::max(0.0, std::min(a[3], b[3]) - std::max(a[1], b[1]));
  const double inter = iw * ih;
  if (inter <= 0) return 0;
  const double ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return inter / ua;
}

void expect_iou_matches_reference(const at::Tensor& a, const at::Tensor& b) {
  auto iou = box_iou(a, b).to(at::kDouble);
  ASSERT_EQ(iou.sizes(), (std::vector<int64_t>{a.size(0), b.size(0)}));
  auto ad = a.to(at::kDouble).contiguous(), bd = b.to(at::kDouble).contiguous();
  for (int64_t i = 0; i < a.size(0); ++i)
    for (int64_t j = 0; j < b.size(0); ++j) {
      const double r = ref_iou(ad.data_ptr<double>() + 4 * i, bd.data_ptr<double>() + 4 * j);
      ASSERT_NEAR(iou[i][j].item<double>(), r, 1e-6) << "pair " << i << ", " << j;
    }
}

TEST(BoxOps, IouMatchesDoubleReferenceOnRandomBoxes) {
  at::manual_seed(1);
  auto a = random_boxes(37, 200, 150, 1, 80);
  auto b = random_boxes(23, 200, 150, 1, 80);
  expect_iou_matches_reference(a, b);
  expect_iou_matches_reference(a.to(at::kDouble), b.to(at::kDouble));
}

TEST(BoxOps, IouOfDegenerateBoxesIsFiniteAndZeroWithoutOverlap) {
  auto e = edge_boxes();
  expect_iou_matches_reference(e, e);
  auto iou = box_iou(e, e);
  EXPECT_TRUE(at::isfinite(iou).all().item<bool>());
  EXPECT_DOUBLE_EQ(iou[0][0].item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(iou[0][6].item<double>(), 1.0);
  EXPECT_DOUBLE_EQ(iou[3][3].item<double>(), 0.0);  // a point overlaps nothing, not even itself
}

TEST(BoxOps, EmptyInputsGiveEmptyOutputs) {
  auto none = at::zeros({0, 4});
  auto some = random_boxes(5, 10, 10, 1, 5);
  EXPECT_EQ(box_iou(none, some).sizes(), (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(box_iou(some, none).sizes(), (std::vector<int64_t>{5, 0}));
  EXPECT_EQ(box_area(none).numel(), 0);
  EXPECT_EQ(clip_boxes_to_image(none, 10, 10).sizes(), none.sizes());
  EXPECT_EQ(remove_small_boxes(none, 1).numel(), 0);
  EXPECT_EQ(box_convert(none, BoxFormat::kXYXY, BoxFormat::kCXCYWH).sizes(), none.sizes());
}

TEST(BoxOps, RejectsWrongShapes) {
  EXPECT_THROW(box_area(at::zeros({3, 5})), Error);
  EXPECT_THROW(box_iou(at::zeros({3}), at::zeros({3, 4})), Error);
}

TEST(BoxOps, AreaAndFormatsAgreeWithReference) {
  auto e = edge_boxes();
  auto area = box_area(e);
  for (int64_t i = 0; i < e.size(0); ++i) {
    auto b = e[i];
    EXPECT_DOUBLE_EQ(area[i].item<double>(), ((b[2] - b[0]) * (b[3] - b[1])).item<double>());
  }
  auto xywh = box_convert(e, BoxFormat::kXYXY, BoxFormat::kXYWH);
  auto cxcywh = box_convert(e, BoxFormat::kXYXY, BoxFormat::kCXCYWH);
  EXPECT_TRUE(at::equal(xywh[1], at::tensor({5., 5., 0., 15.}, at::kDouble)));
  EXPECT_TRUE(at::equal(cxcywh[0], at::tensor({5., 5., 10., 10.}, at::kDouble)));
  at::manual_seed(2);
  auto r = random_boxes(50, 100, 100, 1, 50, at::kDouble);
  for (auto f : {BoxFormat::kXYWH, BoxFormat::kCXCYWH}) {
    auto back = box_convert(box_convert(r, BoxFormat::kXYXY, f), f, BoxFormat::kXYXY);
    EXPECT_TRUE(at::allclose(back, r, 0, 1e-12));
  }
  auto via = box_convert(xywh, BoxFormat::kXYWH, BoxFormat::kCXCYWH);
  EXPECT_TRUE(at::allclose(via, cxcywh));
}

TEST(BoxOps, ClipAndRemoveSmallBoxes) {
  auto b =
      at::tensor({-5., -5., 50., 40., 10., 10., 12., 30., 90., 90., 200., 200., -30., 5., -10., 8.},
                 at::kFloat)
          .view({-1, 4});
  auto c = clip_boxes_to_image(b, /*height=*/60, /*width=*/100);
  auto expected =
      at::tensor({0., 0., 50., 40., 10., 10., 12., 30., 90., 60., 100., 60., 0., 5., 0., 8.},
                 at::kFloat)
          .view({-1, 4});
  EXPECT_TRUE(at::equal(c, expected)) << c;
  auto keep = remove_small_boxes(c, 2.0);
  EXPECT_TRUE(at::equal(keep, at::tensor({0, 1}, at::kLong))) << keep;
  EXPECT_TRUE(at::equal(remove_small_boxes(c, 0.0), at::arange(4, at::kLong)));
}

// BoxCoder against the R-CNN formulas evaluated in double.
TEST(BoxCoder, EncodeDecodeMatchDoubleReference) {
  at::manual_seed(3);
  const double clip = std::log(1000.0 / 16.0);
  for (std::array<double, 4> w : {std::array<double, 4>{10, 10, 5, 5}, {1, 1, 1, 1}}) {
    BoxCoder coder(w);
    auto gt = random_boxes(64, 300, 200, 2, 120, at::kDouble);
    auto pr = random_boxes(64, 300, 200, 2, 120, at::kDouble);
    auto codes = coder.encode(gt, pr);
    auto g = gt.accessor<double, 2>(), p = pr.accessor<double, 2>();
    for (int64_t i = 0; i < 64; ++i) {
      const double pw = p[i][2] - p[i][0], ph = p[i][3] - p[i][1];
      const double gw = g[i][2] - g[i][0], gh = g[i][3] - g[i][1];
      const double dx = w[0] * ((g[i][0] + gw / 2) - (p[i][0] + pw / 2)) / pw;
      const double dy = w[1] * ((g[i][1] + gh / 2) - (p[i][1] + ph / 2)) / ph;
      EXPECT_NEAR(codes[i][0].item<double>(), dx, 1e-9);
      EXPECT_NEAR(codes[i][1].item<double>(), dy, 1e-9);
      EXPECT_NEAR(codes[i][2].item<double>(), w[2] * std::log(gw / pw), 1e-9);
      EXPECT_NEAR(codes[i][3].item<double>(), w[3] * std::log(gh / ph), 1e-9);
    }
    // Decoding the targets gives the ground truth back (no clamp is reached here).
    EXPECT_TRUE(at::allclose(coder.decode(codes, pr), gt, 0, 1e-9));
    // Float inputs agree with the double computation.
    auto f = coder.decode(codes.to(at::kFloat), pr.to(at::kFloat));
    EXPECT_EQ(f.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::allclose(f.to(at::kDouble), gt, 1e-5, 1e-3));

    // Several boxes per proposal, with huge dw/dh that must be clamped before exp().
    auto rel = at::randn({16, 12}, at::kDouble) * 3;
    rel.slice(1, 2, 3).fill_(50 * w[2]);
    auto dec = coder.decode(rel, pr.narrow(0, 0, 16));
    ASSERT_EQ(dec.sizes(), (std::vector<int64_t>{16, 12}));
    auto r = rel.accessor<double, 2>();
    for (int64_t i = 0; i < 16; ++i)
      for (int64_t k = 0; k < 3; ++k) {
        const double pw = p[i][2] - p[i][0], ph = p[i][3] - p[i][1];
        const double cx = p[i][0] + pw / 2 + r[i][4 * k] / w[0] * pw;
        const double cy = p[i][1] + ph / 2 + r[i][4 * k + 1] / w[1] * ph;
        const double bw = std::exp(std::min(r[i][4 * k + 2] / w[2], clip)) * pw;
        const double bh = std::exp(std::min(r[i][4 * k + 3] / w[3], clip)) * ph;
        const double ref[4] = {cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2};
        for (int c = 0; c < 4; ++c)
          EXPECT_NEAR(dec[i][4 * k + c].item<double>(), ref[c], 1e-9 * (1 + std::abs(ref[c])));
      }
  }
}

TEST(BoxCoder, EmptyAndInvalidInputs) {
  BoxCoder coder({10, 10, 5, 5});
  EXPECT_EQ(coder.encode(at::zeros({0, 4}), at::zeros({0, 4})).sizes(),
            (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(coder.decode(at::zeros({0, 8}), at::zeros({0, 4})).sizes(),
            (std::vector<int64_t>{0, 8}));
  EXPECT_THROW(coder.decode(at::zeros({3, 6}), at::zeros({3, 4})), Error);
  EXPECT_THROW(BoxCoder({0, 1, 1, 1}), Error);
}

}  // namespace
}  // namespace largedet::ops
