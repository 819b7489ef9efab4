// The ops on each device (tests/common/on_device.h): Cpu/* runs in every ctest run, Cuda/* on a
// GPU. References are computed on the CPU, in double where the result is continuous in the inputs
// (IoU, box coding, anchors, NMS's decisions, MultiScaleRoIAlign's levels), so that the CPU twin
// checks the float kernels too; half-precision cases take their reference on the values the kernel
// sees (the input rounded to half, RoIs in float as the model passes them).
#include <gtest/gtest.h>

#include <torch/csrc/autograd/autograd.h>

#include "common/on_device.h"
#include "largedet/ops/anchor_generator.h"
#include "largedet/ops/box_coder.h"
#include "largedet/ops/boxes.h"
#include "largedet/ops/matcher.h"
#include "largedet/ops/nms.h"
#include "largedet/ops/paste_masks.h"
#include "largedet/ops/roi_align.h"
#include "largedet/ops/sampler.h"
#include "ops_test_util.h"

namespace largedet::ops {
namespace {

using OpsOnDevice = test::OnDevice;
using NmsOnDevice = test::OnDevice;
using RoIAlignOnDevice = test::OnDevice;
using PasteMasksOnDevice = test::OnDevice;

at::Tensor as_double(const at::Tensor& t) { return t.to(at::kDouble); }

TEST_P(OpsOnDevice, BoxOpsMatchTheCpuInDouble) {
  const auto dev = device();
  at::manual_seed(40);
  auto a = testing::random_boxes(300, 500, 400, 1, 200);
  auto b = testing::random_boxes(200, 500, 400, 1, 200);
  auto iou = box_iou(a.to(dev), b.to(dev)).cpu();
  EXPECT_EQ(iou.scalar_type(), at::kFloat);
  EXPECT_TRUE(at::allclose(as_double(iou), box_iou(as_double(a), as_double(b)), 1e-6, 1e-6));
  EXPECT_TRUE(
      at::equal(clip_boxes_to_image(a.to(dev), 300, 350).cpu(), clip_boxes_to_image(a, 300, 350)));
  EXPECT_TRUE(at::equal(remove_small_boxes(a.to(dev), 50).cpu(), remove_small_boxes(a, 50)));
  BoxCoder coder({10, 10, 5, 5});
  auto first = a.narrow(0, 0, 200);
  auto codes = coder.encode(as_double(first), as_double(b));
  EXPECT_TRUE(
      at::allclose(as_double(coder.encode(first.to(dev), b.to(dev)).cpu()), codes, 1e-5, 1e-5));
  auto codes_f = codes.to(at::kFloat);
  EXPECT_TRUE(at::allclose(as_double(coder.decode(codes_f.to(dev), b.to(dev)).cpu()),
                           coder.decode(as_double(codes_f), as_double(b)), 1e-5, 1e-3));
  AnchorGenerator gen({{32}, {64}, {128}}, {{0.5, 1.0, 2.0}});
  const std::vector<std::pair<int64_t, int64_t>> grids = {{64, 80}, {32, 40}, {16, 20}};
  EXPECT_TRUE(at::allclose(as_double(gen({256, 320}, grids, at::kFloat, dev).cpu()),
                           gen({256, 320}, grids, at::kDouble, at::kCPU), 0, 1e-4));
  Matcher matcher(0.7, 0.3, true);
  auto q = box_iou(a.narrow(0, 0, 10), b);
  EXPECT_TRUE(at::equal(matcher(q.to(dev)).cpu(), matcher(q)));
  // The sampler draws its keys where the labels are: the same seed gives the same picks.
  BalancedPositiveNegativeSampler s1(64, 0.25, 5), s2(64, 0.25, 5);
  auto labels = at::randint(-1, 3, {1000}, at::kLong);
  auto [p1, n1] = s1(labels);
  auto [p2, n2] = s2(labels.to(dev));
  EXPECT_TRUE(at::equal(p1, p2.cpu()));
  EXPECT_TRUE(at::equal(n1, n2.cpu()));
}

TEST_P(NmsOnDevice, MatchesTheCpuInDouble) {
  const auto dev = device();
  at::manual_seed(41);
  for (int64_t n : {0, 1, 63, 64, 65, 1000, 12000}) {
    auto boxes = testing::random_boxes(n, 1000, 800, 8, 300);
    auto scores = (at::rand({n}) * 50).floor();  // ties
    auto classes = at::randint(0, 7, {n}, at::kLong);
    for (double threshold : {0.3, 0.7}) {
      EXPECT_TRUE(at::equal(nms(boxes.to(dev), scores.to(dev), threshold).cpu(),
                            nms(as_double(boxes), as_double(scores), threshold)))
          << n;
      EXPECT_TRUE(
          at::equal(batched_nms(boxes.to(dev), scores.to(dev), classes.to(dev), threshold).cpu(),
                    batched_nms(as_double(boxes), as_double(scores), classes, threshold)))
          << n;
    }
  }
}

TEST_P(NmsOnDevice, SegmentedMatchesTheCpu) {
  const auto dev = device();
  at::manual_seed(44);
  for (int64_t n : {1, 64, 65, 3000, 10000}) {
    const int64_t rows = 4;
    auto boxes = at::stack(
        {testing::random_boxes(n, 1000, 800, 8, 300), testing::random_boxes(n, 1000, 800, 8, 300),
         testing::random_boxes(n, 600, 600, 8, 300), testing::random_boxes(n, 1000, 800, 8, 300)});
    auto scores = (at::rand({rows, n}) * 50).floor();  // ties
    auto classes = at::randint(0, 5, {rows, n}, at::kLong);
    auto valid = at::rand({rows, n}) > 0.2;
    valid[1].fill_(false);
    for (int64_t max_keep : {int64_t{1}, int64_t{1000}, n}) {
      for (bool by_class : {false, true}) {
        auto c = by_class ? classes : at::Tensor();
        // The reference: each row's valid boxes by batched_nms in double, the first max_keep.
        auto [keep, kept] = segmented_nms(boxes.to(dev), scores.to(dev), by_class ? c.to(dev) : c,
                                          valid.to(dev), 0.7, max_keep);
        keep = keep.cpu();
        kept = kept.cpu();
        ASSERT_EQ(keep.sizes(), (std::vector<int64_t>{rows, max_keep}));
        for (int64_t r = 0; r < rows; ++r) {
          auto candidates = valid[r].nonzero().flatten();
          auto row_classes =
              by_class ? c[r].index({candidates}) : at::zeros({candidates.size(0)}, at::kLong);
          auto want = candidates.index(
              {batched_nms(as_double(boxes[r].index({candidates})),
                           as_double(scores[r].index({candidates})), row_classes, 0.7)});
          const int64_t count = std::min(want.size(0), max_keep);
          const std::string where = std::to_string(n) + " row " + std::to_string(r) + " max " +
                                    std::to_string(max_keep) + (by_class ? " by class" : "");
          EXPECT_EQ(kept[r].sum().item<int64_t>(), count) << where;
          EXPECT_TRUE(kept[r].narrow(0, 0, count).all().item<bool>()) << where;
          EXPECT_TRUE(at::equal(keep[r].narrow(0, 0, count), want.narrow(0, 0, count))) << where;
          EXPECT_FALSE(keep[r].narrow(0, count, max_keep - count).any().item<bool>()) << where;
        }
      }
    }
  }
}

TEST_P(NmsOnDevice, MatchesTorchvision) {
  LARGEDET_REQUIRE_TORCHVISION();
  const auto dev = device();
  at::manual_seed(42);
  auto boxes = testing::random_boxes(5000, 1000, 800, 8, 300).to(dev);
  auto scores = at::rand({5000}).to(dev);
  EXPECT_TRUE(at::equal(nms(boxes, scores, 0.5).cpu(), torchvision::nms(boxes, scores, 0.5).cpu()));
}

// RoIAlign's reference is the CPU kernel in float (tests/ops/roi_align_test.cpp checks it against
// a double-precision one on the RoIs whose value is stable under rounding: a bin's sampling count
// and the border clamp are discontinuous in the coordinates, so float and double results differ
// where a coordinate falls on such an edge).
TEST_P(RoIAlignOnDevice, ForwardAndBackwardMatchTheCpu) {
  const auto dev = device();
  at::manual_seed(43);
  auto input = at::randn({2, 16, 50, 68});
  for (int64_t sr : {0, 2})
    for (bool aligned : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "sampling ratio " << sr << " aligned " << aligned);
      RoIAlignOptions o{7, 7, 0.25, sr, aligned};
      auto boxes = testing::random_boxes(100, 272, 200, 0, 150);
      auto rois = at::cat({at::randint(0, 2, {100, 1}).to(at::kFloat), boxes}, 1);
      auto r = rois.to(dev);
      auto ref = roi_align_forward(input, rois, o);
      auto out = roi_align_forward(input.to(dev), r, o).cpu();
      EXPECT_TRUE(at::allclose(out, ref, 1e-5, 1e-5)) << (out - ref).abs().max();
      auto grad = at::randn(ref.sizes());
      auto gref = roi_align_backward(grad, rois, o, 2, 16, 50, 68);
      auto gout = roi_align_backward(grad.to(dev), r, o, 2, 16, 50, 68).cpu();
      EXPECT_TRUE(at::allclose(gout, gref, 1e-4, 1e-5)) << (gout - gref).abs().max();
      // Through autograd (a copy: on the CPU .to(dev) would return input itself, and the
      // gradient would accumulate over the loop).
      auto x = input.to(dev).clone().requires_grad_(true);
      (roi_align(x, r, o) * grad.to(dev)).sum().backward();
      EXPECT_TRUE(at::allclose(x.grad().cpu(), gref, 1e-4, 1e-5));
      // Half-precision features accumulate in float: the reference is the float result on the
      // features rounded to half, with the RoIs in float as the model passes them; what remains
      // is the output's own rounding to half (2^-11 relative).
      auto half_input = input.to(at::kHalf);
      auto half = roi_align_forward(half_input.to(dev), r, o);
      EXPECT_EQ(half.scalar_type(), at::kHalf);
      auto half_ref = roi_align_forward(half_input.to(at::kFloat), rois, o);
      EXPECT_TRUE(at::allclose(half.cpu().to(at::kFloat), half_ref, 1e-3, 1e-3))
          << (half.cpu().to(at::kFloat) - half_ref).abs().max();
    }
}

// Channels-last features: the NHWC kernels agree with the NCHW ones (the forward bit for bit, the
// backward up to the order of the atomic adds) and with the CPU, in float and half, and the output
// and the gradient stay channels-last.
TEST_P(RoIAlignOnDevice, ChannelsLastMatchesNchwAndTheCpu) {
  const auto dev = device();
  at::manual_seed(47);
  const auto cl = at::MemoryFormat::ChannelsLast;
  auto input = at::randn({2, 40, 50, 68});
  auto boxes = testing::random_boxes(100, 272, 200, 0, 150);
  auto rois = at::cat({at::randint(0, 2, {100, 1}).to(at::kFloat), boxes}, 1);
  auto r = rois.to(dev);
  for (auto dtype : {at::kFloat, at::kHalf})
    for (int64_t sr : {0, 2}) {
      SCOPED_TRACE(::testing::Message() << dtype << " sampling ratio " << sr);
      const bool half = dtype == at::kHalf;
      // Half: the output's and the gradient's own rounding (2^-11 relative).
      const double rtol = half ? 2e-3 : 1e-4, atol = half ? 2e-3 : 1e-5;
      RoIAlignOptions o{7, 7, 0.25, sr, sr == 0};
      // The CPU reference in float, on the values the kernel sees.
      auto values = input.to(dtype).to(at::kFloat);
      auto ref = roi_align_forward(values, rois, o);
      auto grad = at::randn(ref.sizes()).to(dtype);
      auto gref = roi_align_backward(grad.to(at::kFloat), rois, o, 2, 40, 50, 68);

      auto x_nchw = input.to(dev, dtype).clone().requires_grad_(true);
      auto x_nhwc = x_nchw.detach().contiguous(cl).requires_grad_(true);
      auto out_nchw = roi_align(x_nchw, r, o), out_nhwc = roi_align(x_nhwc, r, o);
      EXPECT_TRUE(out_nhwc.is_contiguous(cl));
      EXPECT_EQ(out_nhwc.scalar_type(), dtype);
      EXPECT_TRUE(at::equal(out_nhwc, out_nchw));
      auto out = out_nhwc.cpu().to(at::kFloat);
      EXPECT_TRUE(at::allclose(out, ref, rtol, atol)) << (out - ref).abs().max();

      auto g = grad.to(dev);
      auto g_nchw = torch::autograd::grad({out_nchw}, {x_nchw}, {g})[0];
      auto g_nhwc = torch::autograd::grad({out_nhwc}, {x_nhwc}, {g})[0];
      EXPECT_TRUE(g_nchw.is_contiguous());
      EXPECT_TRUE(g_nhwc.is_contiguous(cl));
      EXPECT_EQ(g_nhwc.scalar_type(), dtype);
      EXPECT_TRUE(at::allclose(g_nhwc, g_nchw, rtol, atol));
      auto gout = g_nhwc.cpu().to(at::kFloat);
      EXPECT_TRUE(at::allclose(gout, gref, rtol, atol)) << (gout - gref).abs().max();
      // A channels-last incoming gradient (from channels-last heads) reads the same.
      auto raw = roi_align_backward(g.contiguous(cl), r, o, 2, 40, 50, 68, cl);
      EXPECT_TRUE(raw.is_contiguous(cl));
      EXPECT_TRUE(at::allclose(raw, g_nhwc, rtol, atol));
    }
}

TEST_P(RoIAlignOnDevice, MatchesTorchvision) {
  LARGEDET_REQUIRE_TORCHVISION();
  const auto dev = device();
  at::manual_seed(44);
  auto input = at::randn({2, 16, 50, 68}).to(dev);
  auto boxes = testing::random_boxes(200, 272, 200, 0, 150);
  auto rois = at::cat({at::randint(0, 2, {200, 1}).to(at::kFloat), boxes}, 1).to(dev);
  RoIAlignOptions o{7, 7, 0.25, 0, true};
  auto ours = roi_align_forward(input, rois, o);
  auto theirs = torchvision::roi_align(input, rois, 0.25, 7, 7, 0, true);
  EXPECT_TRUE(at::allclose(ours, theirs, 1e-5, 1e-5 * theirs.abs().max().item<double>()));
  auto grad = at::randn(ours.sizes()).to(dev);
  auto g_ours = roi_align_backward(grad, rois, o, 2, 16, 50, 68);
  auto g_theirs = torchvision::roi_align_backward(grad, rois, 0.25, 7, 7, 2, 16, 50, 68, 0, true);
  EXPECT_TRUE(at::allclose(g_ours, g_theirs, 1e-4, 1e-5 * g_theirs.abs().max().item<double>()));
}

// MultiScaleRoIAlign on NCHW and channels-last levels against the pooler on double CPU levels.
TEST_P(RoIAlignOnDevice, MultiScaleMatchesTheCpuInDouble) {
  const auto dev = device();
  at::manual_seed(45);
  std::vector<at::Tensor> feats, feats_ref;
  for (int64_t l = 0; l < 4; ++l) {
    feats.push_back(at::randn({2, 16, 64 >> l, 80 >> l}));
    feats_ref.push_back(as_double(feats.back()));
  }
  std::vector<at::Tensor> boxes = {testing::random_boxes(30, 320, 256, 4, 250),
                                   testing::random_boxes(20, 300, 240, 4, 250)};
  const std::vector<std::pair<int64_t, int64_t>> sizes = {{256, 320}, {240, 300}};
  MultiScaleRoIAlign pooler(7, 2);
  auto ref =
      pooler(feats_ref, std::vector<at::Tensor>{as_double(boxes[0]), as_double(boxes[1])}, sizes);
  for (auto format : {at::MemoryFormat::Contiguous, at::MemoryFormat::ChannelsLast}) {
    std::vector<at::Tensor> on_device;
    for (const auto& f : feats) on_device.push_back(f.to(dev).contiguous(format));
    auto out =
        pooler(on_device, std::vector<at::Tensor>{boxes[0].to(dev), boxes[1].to(dev)}, sizes);
    EXPECT_TRUE(out.is_contiguous(format)) << format;
    EXPECT_TRUE(at::allclose(as_double(out.cpu()), ref, 1e-5, 1e-5)) << format;
  }
}

TEST_P(PasteMasksOnDevice, MatchesTheCpu) {
  const auto dev = device();
  at::manual_seed(46);
  auto boxes = testing::random_boxes(40, 300, 200, 2, 150);
  auto masks = at::rand({40, 28, 28});
  auto ref = paste_masks_in_image(masks, boxes, 200, 300, -1);
  auto soft = paste_masks_in_image(masks.to(dev), boxes.to(dev), 200, 300, -1).cpu();
  EXPECT_TRUE(at::allclose(soft, ref, 0, 1e-5));
  // Thresholded: equal wherever the reference is not within rounding of the threshold.
  auto decided = (ref - 0.5).abs() > 1e-5;
  auto bin = paste_masks_in_image(masks.to(dev), boxes.to(dev), 200, 300, 0.5).cpu();
  EXPECT_TRUE(at::equal(bin.masked_select(decided), (ref >= 0.5).masked_select(decided)));
}

LARGEDET_ON_DEVICES(OpsOnDevice);
LARGEDET_ON_DEVICES(NmsOnDevice);
LARGEDET_ON_DEVICES(RoIAlignOnDevice);
LARGEDET_ON_DEVICES(PasteMasksOnDevice);

}  // namespace
}  // namespace largedet::ops
