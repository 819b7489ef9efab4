// The ops on CUDA tensors against the CPU results (and torchvision's CUDA kernels). Every test here
// is named Cuda* and skips itself where no GPU is present.
#include <gtest/gtest.h>

#include <torch/csrc/autograd/autograd.h>
#include <torch/cuda.h>

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

#define LARGEDET_REQUIRE_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"

const at::Device kCuda(at::kCUDA, 0);

TEST(CudaBoxOps, MatchCpu) {
  LARGEDET_REQUIRE_CUDA();
  at::manual_seed(40);
  auto a = testing::random_boxes(300, 500, 400, 1, 200);
  auto b = testing::random_boxes(200, 500, 400, 1, 200);
  EXPECT_TRUE(at::allclose(box_iou(a.to(kCuda), b.to(kCuda)).cpu(), box_iou(a, b), 1e-6, 1e-6));
  EXPECT_TRUE(at::equal(clip_boxes_to_image(a.to(kCuda), 300, 350).cpu(),
                        clip_boxes_to_image(a, 300, 350)));
  EXPECT_TRUE(at::equal(remove_small_boxes(a.to(kCuda), 50).cpu(), remove_small_boxes(a, 50)));
  BoxCoder coder({10, 10, 5, 5});
  auto codes = coder.encode(a.narrow(0, 0, 200), b);
  EXPECT_TRUE(at::allclose(coder.encode(a.narrow(0, 0, 200).to(kCuda), b.to(kCuda)).cpu(), codes,
                           1e-5, 1e-5));
  EXPECT_TRUE(at::allclose(coder.decode(codes.to(kCuda), b.to(kCuda)).cpu(), coder.decode(codes, b),
                           1e-5, 1e-3));
  AnchorGenerator gen({{32}, {64}, {128}}, {{0.5, 1.0, 2.0}});
  EXPECT_TRUE(at::equal(gen({256, 320}, {{64, 80}, {32, 40}, {16, 20}}, at::kFloat, kCuda).cpu(),
                        gen({256, 320}, {{64, 80}, {32, 40}, {16, 20}})));
  Matcher matcher(0.7, 0.3, true);
  auto q = box_iou(a.narrow(0, 0, 10), b);
  EXPECT_TRUE(at::equal(matcher(q.to(kCuda)).cpu(), matcher(q)));
  BalancedPositiveNegativeSampler s1(64, 0.25, 5), s2(64, 0.25, 5);
  auto labels = at::randint(-1, 3, {1000}, at::kLong);
  auto [p1, n1] = s1(labels);
  auto [p2, n2] = s2(labels.to(kCuda));
  EXPECT_TRUE(at::equal(p1, p2.cpu()));
  EXPECT_TRUE(at::equal(n1, n2.cpu()));
}

TEST(CudaNms, MatchesCpu) {
  LARGEDET_REQUIRE_CUDA();
  at::manual_seed(41);
  for (int64_t n : {0, 1, 63, 64, 65, 1000, 12000}) {
    auto boxes = testing::random_boxes(n, 1000, 800, 8, 300);
    auto scores = (at::rand({n}) * 50).floor();  // ties
    auto classes = at::randint(0, 7, {n}, at::kLong);
    for (double threshold : {0.3, 0.7}) {
      EXPECT_TRUE(at::equal(nms(boxes.to(kCuda), scores.to(kCuda), threshold).cpu(),
                            nms(boxes, scores, threshold)))
          << n;
      EXPECT_TRUE(at::equal(
          batched_nms(boxes.to(kCuda), scores.to(kCuda), classes.to(kCuda), threshold).cpu(),
          batched_nms(boxes, scores, classes, threshold)))
          << n;
    }
  }
}

TEST(CudaSegmentedNms, MatchesCpu) {
  LARGEDET_REQUIRE_CUDA();
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
        auto [keep, kept] = segmented_nms(boxes, scores, c, valid, 0.7, max_keep);
        auto [keep_gpu, kept_gpu] =
            segmented_nms(boxes.to(kCuda), scores.to(kCuda), by_class ? c.to(kCuda) : c,
                          valid.to(kCuda), 0.7, max_keep);
        EXPECT_TRUE(at::equal(keep_gpu.cpu(), keep) && at::equal(kept_gpu.cpu(), kept))
            << n << " " << max_keep << " " << by_class;
      }
    }
  }
}

TEST(CudaNms, MatchesTorchvisionCuda) {
  LARGEDET_REQUIRE_CUDA();
  LARGEDET_REQUIRE_TORCHVISION();
  at::manual_seed(42);
  auto boxes = testing::random_boxes(5000, 1000, 800, 8, 300).to(kCuda);
  auto scores = at::rand({5000}).to(kCuda);
  EXPECT_TRUE(at::equal(nms(boxes, scores, 0.5).cpu(), torchvision::nms(boxes, scores, 0.5).cpu()));
}

TEST(CudaRoIAlign, ForwardAndBackwardMatchCpu) {
  LARGEDET_REQUIRE_CUDA();
  at::manual_seed(43);
  auto input = at::randn({2, 16, 50, 68});
  for (int64_t sr : {0, 2})
    for (bool aligned : {false, true}) {
      RoIAlignOptions o{7, 7, 0.25, sr, aligned};
      auto boxes = testing::random_boxes(100, 272, 200, 0, 150);
      auto rois = at::cat({at::randint(0, 2, {100, 1}).to(at::kFloat), boxes}, 1);
      auto cpu = roi_align_forward(input, rois, o);
      auto gpu = roi_align_forward(input.to(kCuda), rois.to(kCuda), o).cpu();
      EXPECT_TRUE(at::allclose(gpu, cpu, 1e-5, 1e-5)) << (gpu - cpu).abs().max();
      auto grad = at::randn(cpu.sizes());
      auto gcpu = roi_align_backward(grad, rois, o, 2, 16, 50, 68);
      auto ggpu = roi_align_backward(grad.to(kCuda), rois.to(kCuda), o, 2, 16, 50, 68).cpu();
      EXPECT_TRUE(at::allclose(ggpu, gcpu, 1e-4, 1e-5)) << (ggpu - gcpu).abs().max();
      // Autograd on the device.
      auto x = input.to(kCuda).requires_grad_(true);
      (roi_align(x, rois.to(kCuda), o) * grad.to(kCuda)).sum().backward();
      EXPECT_TRUE(at::allclose(x.grad().cpu(), gcpu, 1e-4, 1e-5));
      // Half precision accumulates in float.
      auto half = roi_align_forward(input.to(kCuda).to(at::kHalf), rois.to(kCuda).to(at::kHalf), o);
      EXPECT_EQ(half.scalar_type(), at::kHalf);
      EXPECT_TRUE(at::allclose(half.cpu().to(at::kFloat), cpu, 1e-2, 2e-2));
    }
}

// Channels-last features on the device: the NHWC kernels agree with the NCHW ones (the forward bit
// for bit, the backward up to the order of the atomic adds) and with the CPU, in float and half,
// and the output and the gradient stay channels-last.
TEST(CudaRoIAlign, ChannelsLastMatchesNchwAndCpu) {
  LARGEDET_REQUIRE_CUDA();
  at::manual_seed(47);
  const auto cl = at::MemoryFormat::ChannelsLast;
  auto input = at::randn({2, 40, 50, 68});
  auto boxes = testing::random_boxes(100, 272, 200, 0, 150);
  auto rois = at::cat({at::randint(0, 2, {100, 1}).to(at::kFloat), boxes}, 1);
  auto r = rois.to(kCuda);
  for (auto dtype : {at::kFloat, at::kHalf})
    for (int64_t sr : {0, 2}) {
      const bool half = dtype == at::kHalf;
      const double rtol = half ? 1e-2 : 1e-4, atol = half ? 1e-2 : 1e-5;
      RoIAlignOptions o{7, 7, 0.25, sr, sr == 0};
      // The CPU reference in float, on the values the device sees.
      auto values = input.to(dtype).to(at::kFloat);
      auto cpu = roi_align_forward(values, rois, o);
      auto grad = at::randn(cpu.sizes()).to(dtype);
      auto gcpu = roi_align_backward(grad.to(at::kFloat), rois, o, 2, 40, 50, 68);

      auto x_nchw = input.to(kCuda, dtype).requires_grad_(true);
      auto x_nhwc = x_nchw.detach().contiguous(cl).requires_grad_(true);
      auto out_nchw = roi_align(x_nchw, r, o), out_nhwc = roi_align(x_nhwc, r, o);
      EXPECT_TRUE(out_nhwc.is_contiguous(cl));
      EXPECT_EQ(out_nhwc.scalar_type(), dtype);
      EXPECT_TRUE(at::equal(out_nhwc, out_nchw)) << dtype << " sr " << sr;
      EXPECT_TRUE(at::allclose(out_nhwc.cpu().to(at::kFloat), cpu, rtol, atol))
          << dtype << " sr " << sr << " " << (out_nhwc.cpu().to(at::kFloat) - cpu).abs().max();

      auto g = grad.to(kCuda);
      auto g_nchw = torch::autograd::grad({out_nchw}, {x_nchw}, {g})[0];
      auto g_nhwc = torch::autograd::grad({out_nhwc}, {x_nhwc}, {g})[0];
      EXPECT_TRUE(g_nchw.is_contiguous());
      EXPECT_TRUE(g_nhwc.is_contiguous(cl));
      EXPECT_EQ(g_nhwc.scalar_type(), dtype);
      EXPECT_TRUE(at::allclose(g_nhwc, g_nchw, rtol, atol)) << dtype << " sr " << sr;
      EXPECT_TRUE(at::allclose(g_nhwc.cpu().to(at::kFloat), gcpu, rtol, atol))
          << dtype << " sr " << sr << " " << (g_nhwc.cpu().to(at::kFloat) - gcpu).abs().max();
      // A channels-last incoming gradient (from channels-last heads) reads the same.
      auto raw = roi_align_backward(g.contiguous(cl), r, o, 2, 40, 50, 68, cl);
      EXPECT_TRUE(raw.is_contiguous(cl));
      EXPECT_TRUE(at::allclose(raw, g_nhwc, rtol, atol)) << dtype << " sr " << sr;
    }

  // MultiScaleRoIAlign keeps channels-last levels so, and matches the CPU.
  std::vector<at::Tensor> feats, feats_gpu;
  for (int64_t l = 0; l < 4; ++l) {
    feats.push_back(at::randn({2, 16, 64 >> l, 80 >> l}));
    feats_gpu.push_back(feats.back().to(kCuda).contiguous(cl));
  }
  std::vector<at::Tensor> per_image = {testing::random_boxes(30, 320, 256, 4, 250),
                                       testing::random_boxes(20, 300, 240, 4, 250)};
  MultiScaleRoIAlign pooler(7, 2);
  auto pooled_cpu = pooler(feats, per_image, {{256, 320}, {240, 300}});
  auto pooled_gpu =
      pooler(feats_gpu, {per_image[0].to(kCuda), per_image[1].to(kCuda)}, {{256, 320}, {240, 300}});
  EXPECT_TRUE(pooled_gpu.is_contiguous(cl));
  EXPECT_TRUE(at::allclose(pooled_gpu.cpu(), pooled_cpu, 1e-5, 1e-5));
}

TEST(CudaRoIAlign, MatchesTorchvisionCuda) {
  LARGEDET_REQUIRE_CUDA();
  LARGEDET_REQUIRE_TORCHVISION();
  at::manual_seed(44);
  auto input = at::randn({2, 16, 50, 68}).to(kCuda);
  auto boxes = testing::random_boxes(200, 272, 200, 0, 150);
  auto rois = at::cat({at::randint(0, 2, {200, 1}).to(at::kFloat), boxes}, 1).to(kCuda);
  RoIAlignOptions o{7, 7, 0.25, 0, true};
  auto ours = roi_align_forward(input, rois, o);
  auto theirs = torchvision::roi_align(input, rois, 0.25, 7, 7, 0, true);
  EXPECT_TRUE(at::allclose(ours, theirs, 1e-5, 1e-5 * theirs.abs().max().item<double>()));
  auto grad = at::randn(ours.sizes()).to(kCuda);
  auto g_ours = roi_align_backward(grad, rois, o, 2, 16, 50, 68);
  auto g_theirs = torchvision::roi_align_backward(grad, rois, 0.25, 7, 7, 2, 16, 50, 68, 0, true);
  EXPECT_TRUE(at::allclose(g_ours, g_theirs, 1e-4, 1e-5 * g_theirs.abs().max().item<double>()));
}

TEST(CudaMultiScaleRoIAlign, MatchesCpu) {
  LARGEDET_REQUIRE_CUDA();
  at::manual_seed(45);
  std::vector<at::Tensor> feats, feats_gpu;
  for (int64_t l = 0; l < 4; ++l) {
    feats.push_back(at::randn({2, 4, 64 >> l, 80 >> l}));
    feats_gpu.push_back(feats.back().to(kCuda));
  }
  std::vector<at::Tensor> boxes = {testing::random_boxes(30, 320, 256, 4, 250),
                                   testing::random_boxes(20, 300, 240, 4, 250)};
  MultiScaleRoIAlign pooler(7, 2);
  auto cpu = pooler(feats, boxes, {{256, 320}, {240, 300}});
  auto gpu = pooler(feats_gpu, {boxes[0].to(kCuda), boxes[1].to(kCuda)}, {{256, 320}, {240, 300}});
  EXPECT_TRUE(at::allclose(gpu.cpu(), cpu, 1e-5, 1e-5));
}

TEST(CudaPasteMasks, MatchesCpu) {
  LARGEDET_REQUIRE_CUDA();
  at::manual_seed(46);
  auto boxes = testing::random_boxes(40, 300, 200, 2, 150);
  auto masks = at::rand({40, 28, 28});
  auto cpu = paste_masks_in_image(masks, boxes, 200, 300, -1);
  auto gpu = paste_masks_in_image(masks.to(kCuda), boxes.to(kCuda), 200, 300, -1).cpu();
  EXPECT_TRUE(at::allclose(gpu, cpu, 0, 1e-5));
  auto decided = (cpu - 0.5).abs() > 1e-5;
  auto bin = paste_masks_in_image(masks.to(kCuda), boxes.to(kCuda), 200, 300, 0.5).cpu();
  EXPECT_TRUE(at::equal(bin.masked_select(decided), (cpu >= 0.5).masked_select(decided)));
}

}  // namespace
}  // namespace largedet::ops
