// MODEL.CHANNELS_LAST: a channels-last batch keeps the FPN levels channels-last, and the detectors
// compute what they compute from an NCHW batch (float32 on the CPU; the convolutions' NHWC kernels
// sum in another order, hence tolerances).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/on_device.h"
#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/distributed/sync_batch_norm.h"
#include "largedet/modeling/backbone/norm.h"
#include "largedet/modeling/detector.h"
#include "modeling_test_util.h"

namespace largedet::modeling {
namespace {

using testing::max_abs_diff;
constexpr auto kChannelsLast = torch::MemoryFormat::ChannelsLast;

std::vector<torch::Tensor> test_images() {
  torch::manual_seed(11);
  return {torch::rand({3, 100, 120}) * 255, torch::rand({3, 90, 70}) * 255};
}

std::vector<Target> test_targets(bool masks) {
  Target t0{torch::tensor({{10.f, 10.f, 60.f, 50.f}, {30.f, 40.f, 110.f, 95.f}}),
            torch::tensor({2, 1}, torch::kLong),
            {}};
  Target t1{torch::tensor({{5.f, 20.f, 50.f, 80.f}}), torch::tensor({3}, torch::kLong), {}};
  if (masks) {
    t0.masks = torch::zeros({2, 100, 120}, torch::kUInt8);
    t0.masks[0].slice(0, 10, 50).slice(1, 10, 60).fill_(1);
    t0.masks[1].slice(0, 40, 95).slice(1, 30, 110).fill_(1);
    t1.masks = torch::zeros({1, 90, 70}, torch::kUInt8);
    t1.masks[0].slice(0, 20, 80).slice(1, 5, 50).fill_(1);
  }
  return {t0, t1};
}

struct Run {
  std::map<std::string, double> losses;
  std::map<std::string, torch::Tensor> grads;
  std::vector<Detections> detections;
};

// Training losses (the samplers reseeded alike), their gradients, and eval-mode detections.
Run run(DetectorImpl& model, bool channels_last, bool masks) {
  model.transform.options.channels_last = channels_last;
  Run r;
  model.train();
  model.reseed(5);
  model.zero_grad();
  auto losses = model.losses(test_images(), test_targets(masks));
  torch::Tensor total = torch::zeros({});
  for (auto& [k, v] : losses) {
    r.losses[k] = v.item<double>();
    total = total + v;
  }
  total.backward();
  for (const auto& p : model.named_parameters())
    if (p.value().grad().defined()) r.grads[p.key()] = p.value().grad().clone();
  model.eval();
  torch::NoGradGuard no_grad;
  r.detections = model.detect(test_images());
  return r;
}

// Every detection of one run has one in the other with the same label, its box within 1e-3 px,
// its score within 1e-4 and (Mask R-CNN) its pasted mask within 1e-3. Order aside, as near-equal
// scores may trade places; and but for the detections within 1e-5 of the lowest score kept, which
// may trade places with ones the detections-per-image cut drops.
void expect_same_detections(const Detections& a, const Detections& b) {
  ASSERT_GT(b.boxes.size(0), 0);
  ASSERT_EQ(a.boxes.sizes(), b.boxes.sizes());
  const auto same = ((a.boxes.unsqueeze(1) - b.boxes.unsqueeze(0)).abs().amax(2) <= 1e-3)
                        .logical_and((a.scores.unsqueeze(1) - b.scores.unsqueeze(0)).abs() <= 1e-4)
                        .logical_and(a.labels.unsqueeze(1) == b.labels.unsqueeze(0));
  const double cut = std::min(a.scores.min().item<double>(), b.scores.min().item<double>()) + 1e-5;
  const auto a_kept = a.scores > cut, b_kept = b.scores > cut;
  EXPECT_GT(b_kept.sum().item<int64_t>(), b.boxes.size(0) / 2);
  EXPECT_TRUE(same.any(1).logical_or(a_kept.logical_not()).all().item<bool>());
  EXPECT_TRUE(same.any(0).logical_or(b_kept.logical_not()).all().item<bool>());
  if (!b.masks.defined()) return;
  const auto rows = torch::nonzero(same.any(1)).view(-1);
  const auto match = same.index_select(0, rows).to(torch::kInt).argmax(1);
  EXPECT_LE(max_abs_diff(a.masks.index_select(0, rows), b.masks.index_select(0, match)), 1e-3);
}

// Losses within 1e-4 relative, every gradient within 1e-2 relative in norm (the features' noise
// can move a max-pool's argmax, which reroutes a few gradient elements; a layout error is off by
// O(1)), the same detections.
void expect_equal_runs(const Run& nhwc, const Run& nchw) {
  ASSERT_EQ(nhwc.losses.size(), nchw.losses.size());
  for (const auto& [k, v] : nchw.losses) {
    EXPECT_GT(v, 0) << k;
    EXPECT_NEAR(nhwc.losses.at(k), v, 1e-4 * std::abs(v)) << k;
  }
  ASSERT_EQ(nhwc.grads.size(), nchw.grads.size());
  for (const auto& [k, g] : nchw.grads) {
    const double norm = g.norm().item<double>();
    EXPECT_LE((nhwc.grads.at(k) - g).norm().item<double>(), 1e-2 * norm + 1e-7) << k;
  }
  ASSERT_EQ(nhwc.detections.size(), nchw.detections.size());
  for (size_t i = 0; i < nchw.detections.size(); ++i) {
    SCOPED_TRACE("image " + std::to_string(i));
    expect_same_detections(nhwc.detections[i], nchw.detections[i]);
  }
}

TEST(ChannelsLast, TransformGivesTheSameBatchInChannelsLastFormat) {
  Transform transform;
  transform.options.min_size = 96;
  transform.options.max_size = 160;
  const auto off = transform(test_images());
  transform.options.channels_last = true;
  const auto on = transform(test_images());
  EXPECT_TRUE(off.tensor.is_contiguous());
  EXPECT_TRUE(on.tensor.is_contiguous(kChannelsLast));
  EXPECT_TRUE(torch::equal(on.tensor, off.tensor));
  EXPECT_EQ(on.image_sizes, off.image_sizes);
  transform.options.channels_last = std::nullopt;  // auto: channels-last for CUDA images only
  EXPECT_TRUE(transform(test_images()).tensor.is_contiguous());
}

TEST(ChannelsLast, MaskRCNNLossesGradientsAndDetectionsEqualTheNchwRun) {
  RCNNOptions o;
  o.backbone.depth = 18;
  testing::narrow(o.backbone, 0.25);
  o.fpn_channels = 32;
  o.roi_heads.representation_size = 64;
  o.roi_heads.num_classes = 4;  // background and the targets' 1..3
  o.roi_heads.mask_on = true;
  o.roi_heads.mask_conv_dim = 16;
  o.roi_heads.score_thresh = 0.0;
  o.transform.min_size = 96;
  o.transform.max_size = 160;
  // The NHWC convolutions change the features in the 6th digit, enough to swap proposals of
  // near-equal objectness (thousands of them, from a random network). So nothing here depends on
  // their order: no NMS, no top-n cut, and every proposal sampled (positives need IoU 0.9, so that
  // the few there are fit the 64 positive slots, which the mask head pools).
  o.rpn.nms_thresh = 1.0;
  o.rpn.pre_nms_top_n_train = o.rpn.pre_nms_top_n_test = 100000;
  o.rpn.post_nms_top_n_train = o.rpn.post_nms_top_n_test = 100000;
  o.roi_heads.batch_size_per_image = 4096;
  o.roi_heads.positive_fraction = 1.0 / 64;
  o.roi_heads.fg_iou_thresh = o.roi_heads.bg_iou_thresh = 0.9;
  o.roi_heads.nms_thresh = 1.0;
  torch::manual_seed(0);
  GeneralizedRCNN model(o);
  {
    // Nothing on the way copies back to NCHW.
    torch::NoGradGuard no_grad;
    model->transform.options.channels_last = true;
    const auto images = model->transform(test_images());
    for (const auto& level : model->backbone->forward(images.tensor))
      EXPECT_TRUE(level.is_contiguous(kChannelsLast)) << level.sizes();
  }
  const auto nchw = run(*model, false, true);
  const auto nhwc = run(*model, true, true);
  EXPECT_EQ(nchw.losses.size(), 5u);
  expect_equal_runs(nhwc, nchw);
}

TEST(ChannelsLast, RetinaNetLossesGradientsAndDetectionsEqualTheNchwRun) {
  RetinaNetOptions o;
  o.backbone.depth = 18;
  testing::narrow(o.backbone, 0.25);
  o.fpn_channels = 32;
  o.num_classes = 4;
  o.num_convs = 2;
  o.score_thresh = 0.0;
  // As above: near-equal scores may swap places, so no NMS and no per-level top-k cut.
  o.nms_thresh = 1.0;
  o.topk_candidates = 100000;
  o.transform.min_size = 96;
  o.transform.max_size = 160;
  torch::manual_seed(0);
  RetinaNet model(o);
  const auto nchw = run(*model, false, false);
  const auto nhwc = run(*model, true, false);
  EXPECT_EQ(nchw.losses.size(), 2u);
  expect_equal_runs(nhwc, nchw);
}

// SyncBN (the LargeDet recipes' norm) wrapped so that every pass through it is seen: its input,
// its output and both their gradients must be channels-last.
struct FormatCount {
  int seen = 0;
  std::vector<std::string> wrong;
};
FormatCount g_formats;

void expect_channels_last(const torch::Tensor& t, const char* what) {
  ++g_formats.seen;
  if (!t.is_contiguous(kChannelsLast))
    g_formats.wrong.push_back(std::string(what) + " of shape " + c10::str(t.sizes()));
}

struct WatchedSyncBNImpl : torch::nn::Module {
  explicit WatchedSyncBNImpl(int64_t channels)
      : norm(register_module("norm", make_norm("SyncBN", channels).ptr())) {}
  torch::Tensor forward(const torch::Tensor& x) {
    expect_channels_last(x, "input");
    if (x.requires_grad())
      x.register_hook([](const torch::Tensor& g) { expect_channels_last(g, "input gradient"); });
    auto y = norm->as<distributed::SyncBatchNorm2dImpl>()->forward(x);
    expect_channels_last(y, "output");
    if (y.requires_grad())
      y.register_hook([](const torch::Tensor& g) { expect_channels_last(g, "output gradient"); });
    return y;
  }
  std::shared_ptr<torch::nn::Module> norm;
};
TORCH_MODULE(WatchedSyncBN);

using ChannelsLastOnDevice = test::OnDevice;

// The SyncBN recipe's model (SyncBN in the backbone and the FPN) keeps a channels-last batch
// channels-last through every norm, forward and backward (on CUDA: ATen's native SyncBN kernels).
TEST_P(ChannelsLastOnDevice, SurvivesEverySyncBNForwardAndBackward) {
  register_norm("WatchedSyncBN", [](int64_t c) { return torch::nn::AnyModule(WatchedSyncBN(c)); });
  RCNNOptions o;
  o.backbone.depth = 18;
  testing::narrow(o.backbone, 0.25);
  o.backbone.norm = "WatchedSyncBN";
  o.backbone.freeze_at = 0;
  o.fpn_norm = "WatchedSyncBN";
  o.fpn_channels = 32;
  o.roi_heads.representation_size = 64;
  o.roi_heads.num_classes = 4;
  o.transform.min_size = 96;
  o.transform.max_size = 160;
  o.transform.channels_last = true;
  torch::manual_seed(0);
  GeneralizedRCNN model(o);
  model->to(device());
  model->train();
  auto images = test_images();
  auto targets = test_targets(false);
  for (auto& image : images) image = image.to(device());
  for (auto& t : targets) {
    t.boxes = t.boxes.to(device());
    t.labels = t.labels.to(device());
  }
  g_formats = {};
  torch::Tensor total = torch::zeros({}, torch::TensorOptions().device(device()));
  for (auto& [k, v] : model->losses(images, targets)) total = total + v;
  total.backward();
  // 1 stem + 16 block norms + 3 downsamples in the backbone, 8 in the FPN; 4 checks each.
  EXPECT_EQ(g_formats.seen, 4 * (1 + 16 + 3 + 8));
  EXPECT_TRUE(g_formats.wrong.empty())
      << g_formats.wrong.size() << " not channels-last, first " << g_formats.wrong.front();
}

LARGEDET_ON_DEVICES(ChannelsLastOnDevice);

// MODEL.CHANNELS_LAST: auto (unset: channels-last for CUDA batches), true or false.
TEST(ChannelsLast, ConfigKeySetsTheTransform) {
  auto config = Config::defaults();
  config.apply_overrides({"MODEL.RESNETS.DEPTH=18", "MODEL.RESNETS.STEM_OUT_CHANNELS=16",
                          "MODEL.RESNETS.WIDTH_PER_GROUP=16", "MODEL.RESNETS.RES2_OUT_CHANNELS=16",
                          "MODEL.FPN.OUT_CHANNELS=16", "MODEL.ROI_BOX_HEAD.FC_DIM=32"});
  EXPECT_FALSE(build_detector(config)->transform.options.channels_last.has_value());
  config.apply_overrides({"MODEL.CHANNELS_LAST=true"});
  EXPECT_EQ(build_detector(config)->transform.options.channels_last, std::optional<bool>(true));
  config.apply_overrides({"MODEL.CHANNELS_LAST=false", "MODEL.META_ARCHITECTURE=RetinaNet"});
  EXPECT_EQ(build_detector(config)->transform.options.channels_last, std::optional<bool>(false));
  EXPECT_THROW(config.apply_overrides({"MODEL.CHANNELS_LAST=yes"}), Error);
}

}  // namespace
}  // namespace largedet::modeling
