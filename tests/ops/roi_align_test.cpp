// roi_align forward/backward against a double-precision reference, finite differences and
// torchvision's kernels; MultiScaleRoIAlign against its definition and torchvision's module.
#include <gtest/gtest.h>

#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <sstream>

#include "largedet/core/error.h"
#include "largedet/ops/host_sync.h"
#include "largedet/ops/roi_align.h"
#include "ops_test_util.h"

namespace largedet::ops {
namespace {

// The definition, in double: bilinear interpolation with RoIAlign's border rules (points more than
// one pixel outside read 0; points in [-1, 0] read the border) and the average of a grid of points
// per bin. Calls `visit(plane offset, weight)` for every (neighbour, weight / count) of output
// element (k, c, ph, pw) so that the same walk gives the forward value and the gradient.
template <typename Visit>
void reference_walk(const at::Tensor& rois, int64_t k, int64_t height, int64_t width,
                    const RoIAlignOptions& o, int64_t ph, int64_t pw, Visit visit) {
  auto r = rois.to(at::kDouble).contiguous();
  const double* roi = r.data_ptr<double>() + 5 * k;
  const double off = o.aligned ? 0.5 : 0.0;
  const double sx = roi[1] * o.spatial_scale - off, sy = roi[2] * o.spatial_scale - off;
  double rw = roi[3] * o.spatial_scale - off - sx, rh = roi[4] * o.spatial_scale - off - sy;
  if (!o.aligned) rw = std::max(rw, 1.0), rh = std::max(rh, 1.0);
  const double bw = rw / o.output_width, bh = rh / o.output_height;
  const int64_t gw =
      o.sampling_ratio > 0 ? o.sampling_ratio : int64_t(std::ceil(rw / o.output_width));
  const int64_t gh =
      o.sampling_ratio > 0 ? o.sampling_ratio : int64_t(std::ceil(rh / o.output_height));
  const double count = std::max<int64_t>(gw * gh, 1);
  for (int64_t iy = 0; iy < gh; ++iy)
    for (int64_t ix = 0; ix < gw; ++ix) {
      double y = sy + ph * bh + (iy + 0.5) * bh / gh;
      double x = sx + pw * bw + (ix + 0.5) * bw / gw;
      if (y < -1 || y > height || x < -1 || x > width) continue;
      y = std::max(y, 0.0), x = std::max(x, 0.0);
      int64_t y0 = int64_t(y), x0 = int64_t(x), y1 = y0 + 1, x1 = x0 + 1;
      if (y0 >= height - 1) y0 = y1 = height - 1, y = double(y0);
      if (x0 >= width - 1) x0 = x1 = width - 1, x = double(x0);
      const double ly = y - y0, lx = x - x0;
      visit(y0 * width + x0, (1 - ly) * (1 - lx) / count);
      visit(y0 * width + x1, (1 - ly) * lx / count);
      visit(y1 * width + x0, ly * (1 - lx) / count);
      visit(y1 * width + x1, ly * lx / count);
    }
}

at::Tensor reference_forward(const at::Tensor& input, const at::Tensor& rois,
                             const RoIAlignOptions& o) {
  auto in = input.to(at::kDouble).contiguous();
  const int64_t c_n = in.size(1), h = in.size(2), w = in.size(3);
  auto out = at::zeros({rois.size(0), c_n, o.output_height, o.output_width}, at::kDouble);
  auto acc = out.accessor<double, 4>();
  for (int64_t k = 0; k < rois.size(0); ++k) {
    const auto b = rois[k][0].item<int64_t>();
    for (int64_t c = 0; c < c_n; ++c) {
      const double* plane = in.data_ptr<double>() + (b * c_n + c) * h * w;
      for (int64_t ph = 0; ph < o.output_height; ++ph)
        for (int64_t pw = 0; pw < o.output_width; ++pw)
          reference_walk(rois, k, h, w, o, ph, pw,
                         [&](int64_t pos, double wt) { acc[k][c][ph][pw] += wt * plane[pos]; });
    }
  }
  return out;
}

at::Tensor reference_backward(const at::Tensor& grad, const at::Tensor& rois,
                              const RoIAlignOptions& o, at::IntArrayRef shape) {
  auto g = grad.to(at::kDouble).contiguous();
  auto gi = at::zeros(shape, at::kDouble);
  const int64_t c_n = shape[1], h = shape[2], w = shape[3];
  auto ga = g.accessor<double, 4>();
  for (int64_t k = 0; k < rois.size(0); ++k) {
    const auto b = rois[k][0].item<int64_t>();
    for (int64_t c = 0; c < c_n; ++c) {
      double* plane = gi.data_ptr<double>() + (b * c_n + c) * h * w;
      for (int64_t ph = 0; ph < o.output_height; ++ph)
        for (int64_t pw = 0; pw < o.output_width; ++pw)
          reference_walk(rois, k, h, w, o, ph, pw,
                         [&](int64_t pos, double wt) { plane[pos] += wt * ga[k][c][ph][pw]; });
    }
  }
  return gi;
}

// RoIs in input pixels over a feature map of (height, width) / scale: random ones plus the edge
// cases (on the border, partly and wholly outside, zero size, inverted, a single point).
at::Tensor test_rois(int64_t n, int64_t batch, double img_h, double img_w, at::ScalarType dtype) {
  auto boxes =
      testing::random_boxes(n, img_w, img_h, 0.5, 0.6 * std::max(img_w, img_h), at::kDouble);
  auto edge = at::tensor({0.,  0.,  img_w, img_h, img_w - 3, img_h - 3, img_w + 5, img_h + 5,
                          -8., -8., 4.,    4.,    -20.,      -20.,      -10.,      -10.,
                          5.,  5.,  5.,    5.,    9.,        4.,        3.,        2.,
                          0.,  0.,  1.,    1.,    img_w - 1, 0.,        img_w,     img_h},
                         at::kDouble)
                  .view({-1, 4});
  // On a 1/8-pixel grid: then float and double agree on the adaptive grid size ceil(size / bins),
  // which otherwise flips where the quotient is within rounding of an integer.
  boxes = (at::cat({boxes, edge}) * 8).round() / 8;
  auto idx = at::randint(0, batch, {boxes.size(0), 1}, at::kDouble);
  return at::cat({idx, boxes}, 1).to(dtype);
}

struct Config {
  int64_t sampling_ratio;
  bool aligned;
  double scale;
  int64_t oh, ow;
};

std::vector<Config> configs() {
  std::vector<Config> out;
  for (int64_t sr : {0, 2, -1})
    for (bool aligned : {false, true})
      for (double scale : {1.0, 0.25})
        out.push_back({sr, aligned, scale, sr == 2 ? 3 : 7, sr == 2 ? 5 : 7});
  return out;
}

std::string describe(const Config& c) {
  std::ostringstream s;
  s << "sampling_ratio " << c.sampling_ratio << " aligned " << c.aligned << " scale " << c.scale
    << " out " << c.oh << "x" << c.ow;
  return s.str();
}

TEST(RoIAlign, ForwardAndBackwardMatchDoubleReference) {
  at::manual_seed(20);
  auto input = at::randn({2, 3, 11, 14}, at::kDouble);
  for (const auto& cfg : configs()) {
    RoIAlignOptions o{cfg.oh, cfg.ow, cfg.scale, cfg.sampling_ratio, cfg.aligned};
    auto rois = test_rois(12, 2, 11 / cfg.scale, 14 / cfg.scale, at::kDouble);
    auto ref = reference_forward(input, rois, o);
    auto out = roi_align_forward(input, rois, o);
    EXPECT_TRUE(at::allclose(out, ref, 1e-12, 1e-12)) << describe(cfg);
    auto grad = at::randn(out.sizes(), at::kDouble);
    auto gref = reference_backward(grad, rois, o, input.sizes());
    auto gi = roi_align_backward(grad, rois, o, 2, 3, 11, 14);
    EXPECT_TRUE(at::allclose(gi, gref, 1e-12, 1e-12)) << describe(cfg);

    // Float: RoIAlign is discontinuous where a sampling point lands exactly on -1 or on the map's
    // far edge, or where size / bins is an integer (the adaptive grid jumps). Float cannot resolve
    // those, so the float check runs on the RoIs whose reference value is stable under a 1e-4 px
    // growth and shrink.
    auto grow = at::tensor({0., -1e-4, -1e-4, 1e-4, 1e-4}, at::kDouble);
    auto change = at::maximum((reference_forward(input, rois + grow, o) - ref).abs(),
                              (reference_forward(input, rois - grow, o) - ref).abs());
    auto stable = at::nonzero(change.amax({1, 2, 3}) < 1e-3).view(-1);
    EXPECT_GE(stable.numel(), rois.size(0) - 3) << describe(cfg);
    auto rs = rois.index_select(0, stable);
    auto outf = roi_align_forward(input.to(at::kFloat), rs.to(at::kFloat), o);
    EXPECT_EQ(outf.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::allclose(outf.to(at::kDouble), ref.index_select(0, stable), 1e-5, 1e-5))
        << describe(cfg);
    auto gs = grad.index_select(0, stable);
    auto gif = roi_align_backward(gs.to(at::kFloat), rs.to(at::kFloat), o, 2, 3, 11, 14);
    EXPECT_TRUE(
        at::allclose(gif.to(at::kDouble), reference_backward(gs, rs, o, input.sizes()), 1e-5, 1e-5))
        << describe(cfg);
  }
}

// Forward splits the RoIs over the threads and backward the channels: either way each output
// sums the same terms in the same order, so the bits do not depend on the thread count.
TEST(RoIAlign, SameBitsOnOneAndTwoThreads) {
  at::manual_seed(22);
  auto input = at::randn({2, 40, 13, 17});
  auto rois = test_rois(30, 2, 13 / 0.5, 17 / 0.5, at::kFloat);
  RoIAlignOptions o{7, 7, 0.5, 2, true};
  auto grad = at::randn({rois.size(0), 40, 7, 7});
  const int threads = at::get_num_threads();
  auto run = [&](int n) {
    at::set_num_threads(n);
    return std::make_pair(roi_align_forward(input, rois, o),
                          roi_align_backward(grad, rois, o, 2, 40, 13, 17));
  };
  auto [out1, grad1] = run(1);
  auto [out2, grad2] = run(2);
  at::set_num_threads(threads);
  EXPECT_TRUE(at::equal(out1, out2));
  EXPECT_TRUE(at::equal(grad1, grad2));
}

// Channels-last features are read in place; the output and the gradient come in the input's
// memory format. The kernels work on channels-last data either way, so the values are the NCHW
// run's bit for bit.
TEST(RoIAlign, ChannelsLastInputGivesTheSameResultsAsNchw) {
  at::manual_seed(27);
  const auto cl = at::MemoryFormat::ChannelsLast;
  auto input = at::randn({2, 24, 13, 17});
  auto rois = test_rois(30, 2, 13 / 0.5, 17 / 0.5, at::kFloat);
  for (auto dtype : {at::kFloat, at::kDouble, at::kHalf})
    for (const auto& o :
         {RoIAlignOptions{7, 7, 0.5, 2, true}, RoIAlignOptions{5, 3, 0.5, 0, false}}) {
      auto nchw = input.to(dtype).requires_grad_(true);
      auto nhwc = input.to(dtype).contiguous(cl).requires_grad_(true);
      auto r = rois.to(dtype);
      auto out_nchw = roi_align(nchw, r, o), out_nhwc = roi_align(nhwc, r, o);
      EXPECT_TRUE(out_nchw.is_contiguous());
      EXPECT_TRUE(out_nhwc.is_contiguous(cl));
      EXPECT_EQ(out_nhwc.scalar_type(), dtype);
      EXPECT_TRUE(at::equal(out_nhwc, out_nchw)) << dtype;
      // autograd::grad hands back roi_align's own gradient (no leaf accumulation re-lays it out).
      auto weights = at::randn(out_nchw.sizes()).to(dtype);
      auto g_nchw = torch::autograd::grad({out_nchw}, {nchw}, {weights})[0];
      auto g_nhwc = torch::autograd::grad({out_nhwc}, {nhwc}, {weights.contiguous(cl)})[0];
      EXPECT_TRUE(g_nchw.is_contiguous());
      EXPECT_TRUE(g_nhwc.is_contiguous(cl));
      EXPECT_EQ(g_nhwc.scalar_type(), dtype);
      EXPECT_TRUE(at::equal(g_nhwc, g_nchw)) << dtype;
      auto raw = roi_align_backward(weights, r, o, 2, 24, 13, 17, cl);
      EXPECT_TRUE(raw.is_contiguous(cl));
      EXPECT_TRUE(at::equal(raw, g_nchw)) << dtype;
    }
}

TEST(RoIAlign, GradientMatchesFiniteDifferences) {
  at::manual_seed(21);
  auto input = at::randn({2, 2, 6, 7}, at::kDouble);
  for (const auto& cfg : configs()) {
    RoIAlignOptions o{cfg.oh, cfg.ow, cfg.scale, cfg.sampling_ratio, cfg.aligned};
    auto rois = test_rois(4, 2, 6 / cfg.scale, 7 / cfg.scale, at::kDouble);
    auto x = input.clone().requires_grad_(true);
    auto y = roi_align(x, rois, o);
    auto weights = at::randn(y.sizes(), at::kDouble);
    (y * weights).sum().backward();
    auto analytic = x.grad();
    auto numeric = at::zeros_like(input);
    const double h = 1e-4;
    auto flat = input.view(-1);
    for (int64_t i = 0; i < flat.numel(); ++i) {
      auto plus = input.clone(), minus = input.clone();
      plus.view(-1)[i] += h;
      minus.view(-1)[i] -= h;
      const double lp = (roi_align_forward(plus, rois, o) * weights).sum().item<double>();
      const double lm = (roi_align_forward(minus, rois, o) * weights).sum().item<double>();
      numeric.view(-1)[i] = (lp - lm) / (2 * h);
    }
    EXPECT_TRUE(at::allclose(analytic, numeric, 1e-6, 1e-7))
        << describe(cfg) << " max diff " << (analytic - numeric).abs().max().item<double>();
  }
}

TEST(RoIAlign, EmptyInputsAndErrors) {
  RoIAlignOptions o;
  auto input = at::randn({1, 4, 8, 8});
  auto none = roi_align(input, at::zeros({0, 5}), o);
  EXPECT_EQ(none.sizes(), (std::vector<int64_t>{0, 4, 7, 7}));
  EXPECT_EQ(roi_align_backward(at::zeros({0, 4, 7, 7}), at::zeros({0, 5}), o, 1, 4, 8, 8).sizes(),
            input.sizes());
  auto per_image =
      roi_align(input, std::vector<at::Tensor>{at::tensor({1.f, 1.f, 6.f, 6.f}).view({1, 4})}, o);
  EXPECT_TRUE(at::equal(per_image,
                        roi_align(input, at::tensor({0.f, 1.f, 1.f, 6.f, 6.f}).view({1, 5}), o)));
  EXPECT_THROW(roi_align(input, at::zeros({3, 4}), o), Error);
  EXPECT_THROW(roi_align(at::zeros({4, 8, 8}), at::zeros({1, 5}), o), Error);
  o.output_height = 0;
  EXPECT_THROW(roi_align(input, at::zeros({1, 5}), o), Error);
}

TEST(RoIAlign, HalfPrecisionInputRunsInFloat) {
  at::manual_seed(22);
  auto input = at::randn({1, 3, 10, 10});
  auto rois = at::tensor({0.f, 1.f, 2.f, 8.f, 9.f}).view({1, 5});
  RoIAlignOptions o{7, 7, 1.0, 2, true};
  auto half = roi_align(input.to(at::kHalf), rois.to(at::kHalf), o);
  EXPECT_EQ(half.scalar_type(), at::kHalf);
  EXPECT_TRUE(at::allclose(half.to(at::kFloat), roi_align(input, rois, o), 1e-2, 1e-2));
}

// Forward and backward agree with torchvision's CPU kernels within 1e-5 (relative to the largest
// value) on the same random inputs.
TEST(RoIAlign, MatchesTorchvision) {
  LARGEDET_REQUIRE_TORCHVISION();
  at::manual_seed(23);
  auto input = at::randn({2, 8, 40, 52});
  for (const auto& cfg : configs()) {
    RoIAlignOptions o{cfg.oh, cfg.ow, cfg.scale, cfg.sampling_ratio, cfg.aligned};
    auto rois = test_rois(60, 2, 40 / cfg.scale, 52 / cfg.scale, at::kFloat);
    auto ours = roi_align_forward(input, rois, o);
    auto theirs = torchvision::roi_align(input, rois, o.spatial_scale, o.output_height,
                                         o.output_width, o.sampling_ratio, o.aligned);
    const double fmax = theirs.abs().max().item<double>();
    EXPECT_TRUE(at::allclose(ours, theirs, 1e-5, 1e-5 * fmax))
        << describe(cfg) << " max diff " << (ours - theirs).abs().max().item<double>();
    auto grad = at::randn(ours.sizes());
    auto g_ours = roi_align_backward(grad, rois, o, 2, 8, 40, 52);
    auto g_theirs =
        torchvision::roi_align_backward(grad, rois, o.spatial_scale, o.output_height,
                                        o.output_width, 2, 8, 40, 52, o.sampling_ratio, o.aligned);
    const double gmax = g_theirs.abs().max().item<double>();
    EXPECT_TRUE(at::allclose(g_ours, g_theirs, 1e-5, 1e-5 * gmax))
        << describe(cfg) << " max diff " << (g_ours - g_theirs).abs().max().item<double>();
  }
}

TEST(MultiScaleRoIAlign, LevelMappingFollowsTheFpnRule) {
  auto boxes =
      at::tensor({0.,  0.,  224., 224., 0.,    0.,    112., 112., 0.,   0.,   448., 448., 0., 0.,
                  10., 10., 0.,   0.,   5000., 5000., 0.,   0.,   223., 225., 0.,   0.,   0., 0.},
                 at::kDouble)
          .view({-1, 4});
  auto levels = map_rois_to_levels(boxes, 2, 5);
  EXPECT_TRUE(at::equal(levels, at::tensor({2, 1, 3, 0, 3, 1, 0}, at::kLong))) << levels;
  at::manual_seed(24);
  auto random = testing::random_boxes(200, 1000, 1000, 4, 900, at::kDouble);
  auto got = map_rois_to_levels(random, 2, 5, 224, 4);
  for (int64_t i = 0; i < 200; ++i) {
    auto b = random[i];
    const double s = std::sqrt(((b[2] - b[0]) * (b[3] - b[1])).item<double>());
    const double lvl = std::clamp(std::floor(4 + std::log2(s / 224) + 1e-6), 2.0, 5.0);
    EXPECT_EQ(got[i].item<int64_t>(), int64_t(lvl) - 2);
  }
}

TEST(MultiScaleRoIAlign, PoolsEachRoiFromItsLevelAndBackpropagates) {
  at::manual_seed(25);
  std::vector<at::Tensor> feats;
  for (int64_t l = 0; l < 4; ++l)
    feats.push_back(at::randn({2, 3, 64 >> l, 80 >> l}, at::kDouble).requires_grad_(true));
  std::vector<at::Tensor> boxes = {testing::random_boxes(30, 320, 256, 4, 250, at::kDouble),
                                   testing::random_boxes(20, 300, 240, 4, 250, at::kDouble)};
  MultiScaleRoIAlign pooler(7, 2);
  auto scales = MultiScaleRoIAlign::infer_scales(feats, {{256, 320}, {240, 300}});
  EXPECT_EQ(scales, (std::vector<double>{0.25, 0.125, 0.0625, 0.03125}));
  auto out = pooler(feats, boxes, {{256, 320}, {240, 300}});
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{50, 3, 7, 7}));
  auto rois = boxes_to_rois(boxes);
  auto levels = map_rois_to_levels(rois.narrow(1, 1, 4), 2, 5);
  for (int64_t k = 0; k < 50; ++k) {
    const auto l = levels[k].item<int64_t>();
    auto expected = roi_align_forward(feats[l].detach(), rois.narrow(0, k, 1),
                                      RoIAlignOptions{7, 7, scales[l], 2, false});
    ASSERT_TRUE(at::allclose(out.narrow(0, k, 1), expected, 0, 1e-12)) << k;
  }
  auto weights = at::randn(out.sizes(), at::kDouble);
  (out * weights).sum().backward();
  for (int64_t l = 0; l < 4; ++l) {
    // Level l's gradient is roi_align's backward over the RoIs mapped to it.
    auto idx = at::nonzero(levels == l).view(-1);
    auto expected = roi_align_backward(weights.index_select(0, idx), rois.index_select(0, idx),
                                       RoIAlignOptions{7, 7, scales[l], 2, false}, 2, 3,
                                       feats[l].size(2), feats[l].size(3));
    ASSERT_TRUE(feats[l].grad().defined());
    EXPECT_TRUE(at::allclose(feats[l].grad(), expected, 0, 1e-12)) << l;
  }
}

// One launch for all levels: each RoI's output and its share of each level's gradient are, bit for
// bit, roi_align's on its own level; levels out of range and mismatched maps are refused; the
// pooler reads nothing back from the device.
TEST(RoIAlignLevels, EqualsRoIAlignOnEachRoisLevel) {
  at::manual_seed(31);
  std::vector<at::Tensor> feats;
  const std::vector<double> scales = {0.25, 0.125, 0.0625};
  for (int64_t l = 0; l < 3; ++l)
    feats.push_back(at::randn({2, 5, 64 >> l, 48 >> l}).requires_grad_(true));
  const auto rois = boxes_to_rois(std::vector<at::Tensor>{
      testing::random_boxes(40, 190, 250, 2, 180), testing::random_boxes(25, 190, 250, 2, 180)});
  const auto levels = at::randint(0, 3, {65}, at::kLong);
  const RoIAlignOptions o{7, 5, 1.0, 2, true};
  const auto out = roi_align_levels(feats, rois, levels, scales, o);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{65, 5, 7, 5}));
  const auto weights = at::randn(out.sizes());
  (out * weights).sum().backward();
  for (int64_t l = 0; l < 3; ++l) {
    const auto idx = at::nonzero(levels == l).view(-1);
    RoIAlignOptions ol = o;
    ol.spatial_scale = scales[static_cast<size_t>(l)];
    EXPECT_TRUE(at::equal(out.index_select(0, idx),
                          roi_align_forward(feats[l].detach(), rois.index_select(0, idx), ol)))
        << l;
    EXPECT_TRUE(at::equal(
        feats[l].grad(), roi_align_backward(weights.index_select(0, idx), rois.index_select(0, idx),
                                            ol, 2, 5, feats[l].size(2), feats[l].size(3))))
        << l;
  }
  EXPECT_THROW(roi_align_levels(feats, rois, levels.clone().fill_(3), scales, o), Error);
  EXPECT_THROW(roi_align_levels(feats, rois, levels.clone().fill_(-1), scales, o), Error);
  EXPECT_THROW(roi_align_levels(feats, rois, levels.narrow(0, 0, 3), scales, o), Error);
  EXPECT_THROW(roi_align_levels(feats, rois, levels, {0.25, 0.125}, o), Error);
  EXPECT_THROW(roi_align_levels({feats[0], at::randn({2, 4, 16, 12})}, rois, levels.clamp_max(1),
                                {0.25, 0.125}, o),
               Error);
  HostSyncProfiler profiler;
  MultiScaleRoIAlign pooler(7, 2);
  (void)pooler.pool_rois(feats, rois, {{256, 190}, {250, 180}});
  EXPECT_EQ(profiler.counts().syncs, 0);
}

TEST(MultiScaleRoIAlign, ChannelsLastLevelsGiveTheSameResultsAsNchw) {
  at::manual_seed(28);
  std::vector<at::Tensor> nchw, nhwc;
  for (int64_t l = 0; l < 4; ++l) {
    nchw.push_back(at::randn({2, 8, 64 >> l, 80 >> l}).requires_grad_(true));
    nhwc.push_back(
        nchw.back().detach().contiguous(at::MemoryFormat::ChannelsLast).requires_grad_(true));
  }
  std::vector<at::Tensor> boxes = {testing::random_boxes(30, 320, 256, 4, 250),
                                   testing::random_boxes(20, 300, 240, 4, 250)};
  MultiScaleRoIAlign pooler(7, 2);
  auto out_nchw = pooler(nchw, boxes, {{256, 320}, {240, 300}});
  auto out_nhwc = pooler(nhwc, boxes, {{256, 320}, {240, 300}});
  EXPECT_TRUE(out_nhwc.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(at::equal(out_nhwc, out_nchw));
  auto weights = at::randn(out_nchw.sizes());
  auto g_nchw = torch::autograd::grad({out_nchw}, nchw, {weights});
  auto g_nhwc = torch::autograd::grad({out_nhwc}, nhwc, {weights});
  for (size_t l = 0; l < 4; ++l) {
    EXPECT_TRUE(g_nhwc[l].is_contiguous(at::MemoryFormat::ChannelsLast)) << l;
    EXPECT_TRUE(at::equal(g_nhwc[l], g_nchw[l])) << l;
  }
}

TEST(MultiScaleRoIAlign, MatchesTorchvision) {
  at::manual_seed(26);
  const std::vector<std::array<int64_t, 2>> shapes = {{64, 80}, {32, 40}, {16, 20}, {8, 10}};
  std::vector<at::Tensor> feats;
  for (auto [h, w] : shapes) feats.push_back(at::randn({2, 4, h, w}));
  std::vector<at::Tensor> boxes = {testing::random_boxes(40, 320, 256, 4, 250),
                                   testing::random_boxes(25, 300, 240, 4, 250)};
  auto dir = testing::temp_dir("msroi");
  for (size_t l = 0; l < feats.size(); ++l)
    testing::write_f32(dir / ("feat" + std::to_string(l) + ".f32"), feats[l]);
  testing::write_f32(dir / "boxes0.f32", boxes[0]);
  testing::write_f32(dir / "boxes1.f32", boxes[1]);
  std::ostringstream py;
  py << "import sys, numpy as np, torch\n"
        "from torchvision.ops import MultiScaleRoIAlign\n"
        "d = sys.argv[1]\n"
        "shapes = [";
  for (auto [h, w] : shapes) py << "(" << h << "," << w << "),";
  py << "]\n"
        "rd = lambda n: torch.from_numpy(np.fromfile(f'{d}/{n}.f32', dtype=np.float32))\n"
        "feats = {str(l): rd(f'feat{l}').view(2, 4, h, w) for l, (h, w) in enumerate(shapes)}\n"
        "boxes = [rd('boxes0').view(-1, 4), rd('boxes1').view(-1, 4)]\n"
        "m = MultiScaleRoIAlign(list(feats.keys()), 7, 2)\n"
        "m(feats, boxes, [(256, 320), (240, 300)]).numpy().tofile(f'{d}/out.f32')\n";
  const int rc = testing::run_python(dir, py.str());
  if (rc < 0) GTEST_SKIP() << "no Python with torchvision at " << LARGEDET_PYTHON;
  ASSERT_EQ(rc, 0);
  auto theirs = testing::read_f32(dir / "out.f32");
  auto ours = MultiScaleRoIAlign(7, 2)(feats, boxes, {{256, 320}, {240, 300}});
  ASSERT_EQ(theirs.numel(), ours.numel());
  EXPECT_TRUE(
      at::allclose(ours.reshape(-1), theirs, 1e-5, 1e-5 * theirs.abs().max().item<double>()));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace largedet::ops
