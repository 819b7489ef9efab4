// RetinaNet against torchvision (same weights and images: same levels, detections and losses),
// and its losses' building blocks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/modeling/build.h"
#include "largedet/modeling/meta_arch/retinanet.h"
#include "largedet/modeling/weights.h"
#include "modeling_test_util.h"

namespace largedet::modeling {
namespace {

using testing::max_abs_diff;

TEST(RetinaNetLosses, FocalAndGIoU) {
  auto logits = torch::tensor({2.0, -1.0, 0.5});
  auto targets = torch::tensor({1.0, 0.0, 1.0});
  // alpha_t * (1 - p_t)^gamma * CE, by hand.
  double expected = 0;
  for (int i = 0; i < 3; ++i) {
    double x = logits[i].item<double>(), t = targets[i].item<double>();
    double p = 1 / (1 + std::exp(-x));
    double pt = t ? p : 1 - p;
    double at = t ? 0.25 : 0.75;
    expected += at * std::pow(1 - pt, 2) * -std::log(pt);
  }
  EXPECT_NEAR(sigmoid_focal_loss(logits, targets, 0.25, 2).sum().item<double>(), expected, 1e-6);
  auto b = torch::tensor({{0.f, 0.f, 10.f, 10.f}, {0.f, 0.f, 10.f, 10.f}});
  auto g = torch::tensor({{0.f, 0.f, 10.f, 10.f}, {20.f, 0.f, 30.f, 10.f}});
  // identical: 0; disjoint: 1 - (0 - (300 - 200) / 300)
  EXPECT_NEAR(giou_loss(b, g).sum().item<double>(), 1 + 100.0 / 300, 1e-5);
}

TEST(TorchvisionParity, RetinaNetEvalAndLosses) {
  LARGEDET_TORCHVISION_FIXTURE(dir, "retinanet");
  at::set_num_threads(1);  // as the fixture: thread-dependent summation order otherwise
  auto io = safetensors::load(dir + "/io.safetensors");
  auto weights = safetensors::load(dir + "/weights.safetensors").tensors;
  auto get = [&](const std::string& k) {
    EXPECT_TRUE(io.tensors.count(k)) << k;
    return io.tensors.at(k);
  };
  RetinaNetOptions o;
  o.num_classes = std::stoll(io.metadata.at("num_classes"));
  o.transform.min_size = std::stoll(io.metadata.at("min_size"));
  o.transform.max_size = std::stoll(io.metadata.at("max_size"));
  o.transform.pixel_mean = {0.485, 0.456, 0.406};
  o.transform.pixel_std = {0.229, 0.224, 0.225};
  RetinaNet model(o);
  auto report = load_state_dict(*model, weights, true);
  EXPECT_TRUE(report.ok()) << report.str();
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  EXPECT_EQ(params, std::stoll(io.metadata.at("params_frozen_bn")));
  std::vector<torch::Tensor> images = {get("image.0"), get("image.1")};
  model->eval();
  {
    torch::NoGradGuard g;
    auto batch = model->transform(images);
    auto features = model->backbone->forward(batch.tensor);
    ASSERT_EQ(features.size(), 5u);
    for (size_t l = 0; l < features.size(); ++l) {
      auto ref = get("feature." + std::to_string(l));
      ASSERT_EQ(features[l].sizes(), ref.sizes());
      EXPECT_LT(max_abs_diff(features[l], ref), 1e-4 * (1 + ref.abs().max().item<double>()));
    }
    auto dets = model->detect(images);
    for (size_t i = 0; i < 2; ++i) {
      auto s = std::to_string(i);
      auto ref = get("boxes." + s);
      ASSERT_EQ(dets[i].boxes.sizes(), ref.sizes()) << "image " << i;
      EXPECT_GT(ref.size(0), 10);
      EXPECT_TRUE(torch::equal(dets[i].labels, get("labels." + s))) << "image " << i;
      EXPECT_LT(max_abs_diff(dets[i].boxes, ref), 1e-3) << "image " << i;
      EXPECT_LT(max_abs_diff(dets[i].scores, get("scores." + s)), 1e-4) << "image " << i;
    }
  }
  model->train();
  std::vector<Target> targets;
  for (int i = 0; i < 2; ++i) {
    auto s = std::to_string(i);
    targets.push_back({get("gt_boxes." + s), get("gt_labels." + s), {}});
  }
  auto losses = model->losses(images, targets);
  EXPECT_EQ(losses.size(), 2u);
  // Ours (detectron2's names) -> torchvision's, as the fixture stores them.
  for (auto [n, theirs] : {std::pair<const char*, const char*>{"loss_cls", "classification"},
                           {"loss_box_reg", "bbox_regression"}}) {
    ASSERT_TRUE(losses.count(n)) << n;
    double ref = get(std::string("loss.") + theirs).item<double>();
    EXPECT_NEAR(losses[n].item<double>(), ref, 1e-4 * std::abs(ref)) << n;
  }
  (losses["loss_cls"] + losses["loss_box_reg"]).backward();
  EXPECT_TRUE(model->cls_logits->weight.grad().defined());
}

TEST(RetinaNet, BuiltFromConfig) {
  auto config = Config::defaults();
  config.apply_overrides({"MODEL.META_ARCHITECTURE=RetinaNet", "MODEL.RESNETS.DEPTH=18",
                          "MODEL.RESNETS.STEM_OUT_CHANNELS=16", "MODEL.RESNETS.WIDTH_PER_GROUP=16",
                          "MODEL.RESNETS.RES2_OUT_CHANNELS=16", "MODEL.FPN.OUT_CHANNELS=32",
                          "MODEL.RETINANET.NUM_CLASSES=3",
                          "MODEL.RETINANET.BBOX_REG_LOSS_TYPE=giou", "INPUT.MIN_SIZE_TEST=64",
                          "INPUT.MAX_SIZE_TEST=96"});
  auto det = build_detector(config);
  auto* retina = dynamic_cast<RetinaNetImpl*>(det.get());
  ASSERT_NE(retina, nullptr);
  EXPECT_EQ(retina->anchor_generator.num_anchors_per_location(0), 9);
  std::vector<torch::Tensor> ims = {torch::rand({3, 64, 80}) * 255};
  det->train();
  auto losses = det->losses(
      ims, {{torch::tensor({{5.f, 5.f, 40.f, 30.f}}), torch::tensor({1}, torch::kLong), {}}});
  ASSERT_TRUE(losses.count("loss_box_reg"));
  EXPECT_TRUE(std::isfinite(losses["loss_box_reg"].item<double>()));
  det->eval();
  torch::NoGradGuard g;
  EXPECT_EQ(det->detect(ims).size(), 1u);
  EXPECT_THROW(config.apply_overrides({"MODEL.RETINANET.BBOX_REG_LOSS_TYPE=l2"}), Error);
  RetinaNetOptions bad;
  bad.backbone.depth = 18;
  testing::narrow(bad.backbone, 0.25);
  bad.box_loss = "l2";  // the options struct is checked too, for library users
  EXPECT_THROW(RetinaNet{bad}, Error);
}

}  // namespace
}  // namespace largedet::modeling
