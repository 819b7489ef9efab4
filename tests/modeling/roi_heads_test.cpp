// The ROI heads' modules: the default box and mask heads against torchvision's own modules (the
// same parameter names and shapes, so checkpoints load by name, and the same function given the
// same weights), the heads' registries (MODEL.ROI_BOX_HEAD.NAME, MODEL.ROI_MASK_HEAD.NAME), and
// the NORM keys training a small detector.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "common/shell.h"
#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/distributed/sync_batch_norm.h"
#include "largedet/modeling/backbone/norm.h"
#include "largedet/modeling/build.h"
#include "largedet/modeling/roi_heads/box_head.h"
#include "largedet/modeling/roi_heads/fast_rcnn.h"
#include "largedet/modeling/roi_heads/mask_head.h"
#include "largedet/modeling/roi_heads/roi_heads.h"
#include "largedet/modeling/weights.h"
#include "largedet/tensor/safetensors.h"
#include "modeling_test_util.h"

namespace largedet::modeling {
namespace {

// Saves torchvision's module built by `ctor` (random weights and statistics), an input and its
// output to `path`; false when the venv has no torchvision.
bool torchvision_module(const std::string& ctor, const std::string& path) {
  const std::string script =
      "import torch, torchvision\n"
      "from torchvision.models.detection.faster_rcnn import FastRCNNConvFCHead, TwoMLPHead\n"
      "from torchvision.models.detection.mask_rcnn import MaskRCNNHeads\n"
      "import sys; sys.path.insert(0, '" LARGEDET_SOURCE_DIR
      "/tools')\n"
      "from convert_torchvision import write_safetensors\n"
      "torch.manual_seed(0)\n"
      "m = " +
      ctor +
      ".eval()\n"
      "for name, p in m.named_parameters(): p.data.normal_(0, 0.05)\n"
      "for name, b in m.named_buffers():\n"
      "    if b.is_floating_point(): b.data.uniform_(0.5, 1.5)\n"
      "x = torch.randn(3, 8, 5, 5)\n"
      "t = {k: v.contiguous() for k, v in m.state_dict().items() if 'num_batches' not in k}\n"
      "t['__input__'] = x\n"
      "with torch.no_grad(): t['__output__'] = m(x).contiguous()\n"
      "write_safetensors('" +
      path + "', t)\n";
  const auto check =
      test::run_shell(std::string(LARGEDET_PYTHON) + " -c 'import torchvision' 2>&1");
  if (check.code != 0) return false;
  const auto run = test::run_shell(std::string(LARGEDET_PYTHON) + " -c " + test::quote(script));
  EXPECT_EQ(run.code, 0) << run.output;
  return run.code == 0;
}

// `ours` (its parameters and buffers by name) against torchvision's module built by `ctor`;
// `forward` runs ours.
void expect_same_as_torchvision(torch::nn::Module& ours,
                                const std::function<torch::Tensor(const torch::Tensor&)>& forward,
                                const std::string& ctor, const std::string& name) {
  const std::string path =
      (std::filesystem::temp_directory_path() /
       ("largedet_" + name + "_" + std::to_string(::getpid()) + ".safetensors"))
          .string();
  if (!torchvision_module(ctor, path)) GTEST_SKIP() << "torchvision missing";
  auto theirs = safetensors::load(path).tensors;
  std::filesystem::remove(path);
  const auto input = theirs.at("__input__"), expected = theirs.at("__output__");
  theirs.erase("__input__");
  theirs.erase("__output__");
  std::map<std::string, torch::Tensor> own;
  for (const auto& p : ours.named_parameters()) own[p.key()] = p.value();
  for (const auto& b : ours.named_buffers())
    if (b.key().find("num_batches") == std::string::npos) own[b.key()] = b.value();
  ASSERT_EQ(own.size(), theirs.size());
  torch::NoGradGuard no_grad;
  for (auto& [key, tensor] : own) {
    ASSERT_TRUE(theirs.count(key)) << name << ": torchvision has no " << key;
    ASSERT_EQ(tensor.sizes(), theirs[key].sizes()) << key;
    tensor.copy_(theirs[key]);
  }
  ours.eval();
  EXPECT_TRUE(torch::allclose(forward(input), expected, 1e-5, 1e-6)) << name;
}

TEST(BoxHead, TwoMLPHeadIsTorchvisions) {
  FastRCNNConvFCHead head(BoxHeadOptions(8, 5).fc_dim(16));
  expect_same_as_torchvision(
      *head, [&](const torch::Tensor& x) { return head->forward(x); }, "TwoMLPHead(8 * 5 * 5, 16)",
      "two_mlp");
}

TEST(BoxHead, FourConvOneFcWithNormIsTorchvisionsFastRCNNConvFCHead) {
  FastRCNNConvFCHead head(
      BoxHeadOptions(8, 5).num_conv(4).conv_dim(6).num_fc(1).fc_dim(16).norm("BN"));
  expect_same_as_torchvision(
      *head, [&](const torch::Tensor& x) { return head->forward(x); },
      "FastRCNNConvFCHead((8, 5, 5), [6, 6, 6, 6], [16], norm_layer=torch.nn.BatchNorm2d)",
      "conv_fc");
}

TEST(MaskHead, ConvsWithAndWithoutNormAreTorchvisionsMaskRCNNHeads) {
  for (const std::string norm : {"", "BN"}) {
    MaskRCNNConvUpsampleHead head(MaskHeadOptions(8, 3).num_conv(2).conv_dim(6).norm(norm));
    auto convs = head->mask_head;
    expect_same_as_torchvision(
        *convs, [&](const torch::Tensor& x) { return convs->forward(x); },
        norm.empty() ? "MaskRCNNHeads(8, [6, 6], 1)"
                     : "MaskRCNNHeads(8, [6, 6], 1, norm_layer=torch.nn.BatchNorm2d)",
        norm.empty() ? "mask" : "mask_bn");
  }
}

TEST(MaskHead, UpsamplesToTwiceThePoolAndOneMapPerClass) {
  MaskRCNNConvUpsampleHead head(MaskHeadOptions(8, 5).num_conv(1).conv_dim(6));
  EXPECT_EQ(head->forward(torch::randn({3, 8, 7, 7})).sizes(), (torch::IntArrayRef{3, 5, 14, 14}));
  MaskRCNNConvUpsampleHead no_convs(MaskHeadOptions(8, 5).num_conv(0).conv_dim(6));
  EXPECT_EQ(no_convs->forward(torch::randn({2, 8, 7, 7})).sizes(),
            (torch::IntArrayRef{2, 5, 14, 14}));
}

TEST(BoxHead, OutputWidthAndEmptyHead) {
  EXPECT_EQ(
      FastRCNNConvFCHead(BoxHeadOptions(8, 5).num_conv(2).conv_dim(6).num_fc(0))->output_size(),
      6 * 5 * 5);
  EXPECT_EQ(FastRCNNConvFCHead(BoxHeadOptions(8, 5).fc_dim(32))->output_size(), 32);
  EXPECT_THROW(FastRCNNConvFCHead(BoxHeadOptions(8, 5).num_fc(0)), Error);
}

// The default heads inside the ROI heads keep torchvision's state_dict names, so converted
// torchvision checkpoints load (tests/modeling/rcnn_parity_test.cpp loads them strictly).
TEST(RoIHeads, DefaultHeadsHaveTorchvisionsNames) {
  RoIHeadsOptions o;
  o.num_classes = 4;
  o.representation_size = 32;
  o.mask_on = true;
  o.mask_num_conv = 2;
  o.mask_conv_dim = 8;
  RoIHeads heads(16, o);
  std::set<std::string> names;
  for (const auto& p : heads->named_parameters()) names.insert(p.key());
  const std::set<std::string> expected = {"box_head.fc6.weight",
                                          "box_head.fc6.bias",
                                          "box_head.fc7.weight",
                                          "box_head.fc7.bias",
                                          "box_predictor.cls_score.weight",
                                          "box_predictor.cls_score.bias",
                                          "box_predictor.bbox_pred.weight",
                                          "box_predictor.bbox_pred.bias",
                                          "mask_head.0.0.weight",
                                          "mask_head.0.0.bias",
                                          "mask_head.1.0.weight",
                                          "mask_head.1.0.bias",
                                          "mask_predictor.conv5_mask.weight",
                                          "mask_predictor.conv5_mask.bias",
                                          "mask_predictor.mask_fcn_logits.weight",
                                          "mask_predictor.mask_fcn_logits.bias"};
  EXPECT_EQ(names, expected);
  EXPECT_EQ(heads->box_predictor->cls_score->weight.sizes(), (torch::IntArrayRef{4, 32}));
  EXPECT_EQ(heads->box_predictor->bbox_pred->weight.sizes(), (torch::IntArrayRef{16, 32}));
  // train() / eval() reach the mask head itself, not only its registered parts.
  heads->eval();
  EXPECT_FALSE(heads->mask_head->is_training());
  heads->train();
  EXPECT_TRUE(heads->mask_head->is_training());
}

// ---------------------------------------------------------------------------------------------
// Built from the configuration

// A small Faster / Mask R-CNN (ResNet-18 at a quarter width) from Config::defaults() plus
// `overrides`.
Config small_config(const std::vector<std::string>& overrides) {
  auto config = Config::defaults();
  config.apply_overrides({"MODEL.RESNETS.DEPTH=18", "MODEL.RESNETS.STEM_OUT_CHANNELS=16",
                          "MODEL.RESNETS.WIDTH_PER_GROUP=16", "MODEL.RESNETS.RES2_OUT_CHANNELS=16",
                          "MODEL.FPN.OUT_CHANNELS=32", "MODEL.ROI_BOX_HEAD.FC_DIM=32",
                          "MODEL.ROI_BOX_HEAD.CONV_DIM=32", "MODEL.ROI_MASK_HEAD.CONV_DIM=32",
                          "MODEL.ROI_MASK_HEAD.NUM_CONV=2", "MODEL.ROI_HEADS.NUM_CLASSES=3",
                          "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE=64",
                          "MODEL.RPN.BATCH_SIZE_PER_IMAGE=64", "MODEL.RPN.POST_NMS_TOPK_TRAIN=200",
                          "INPUT.MIN_SIZE_TEST=96", "INPUT.MAX_SIZE_TEST=128"});
  config.apply_overrides(overrides);
  return config;
}

std::vector<torch::Tensor> small_images() {
  torch::manual_seed(7);
  return {torch::rand({3, 96, 120}) * 255, torch::rand({3, 100, 90}) * 255};
}

std::vector<Target> small_targets(bool masks) {
  Target a{torch::tensor({{10.f, 12.f, 60.f, 70.f}, {50.f, 20.f, 110.f, 90.f}}),
           torch::tensor({1, 2}, torch::kLong),
           {}};
  Target b{torch::tensor({{20.f, 30.f, 80.f, 95.f}}), torch::tensor({3}, torch::kLong), {}};
  if (masks) {
    a.masks = torch::zeros({2, 96, 120}, torch::kUInt8);
    a.masks[0].slice(0, 12, 70).slice(1, 10, 60).fill_(1);
    a.masks[1].slice(0, 20, 90).slice(1, 50, 110).fill_(1);
    b.masks = torch::zeros({1, 100, 90}, torch::kUInt8);
    b.masks[0].slice(0, 30, 95).slice(1, 20, 80).fill_(1);
  }
  return {a, b};
}

// Trains `steps` SGD steps on the same two images; returns the total loss of each step.
std::vector<double> train_steps(DetectorImpl& model, int steps, bool masks) {
  torch::optim::SGD sgd(model.parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const auto images = small_images();
  std::vector<double> totals;
  model.train();
  for (int step = 0; step < steps; ++step) {
    model.reseed(static_cast<uint64_t>(step));
    auto losses = model.losses(images, small_targets(masks));
    torch::Tensor total = torch::zeros({});
    for (auto& [name, loss] : losses) {
      EXPECT_TRUE(std::isfinite(loss.item<double>())) << name << " at step " << step;
      total = total + loss;
    }
    sgd.zero_grad();
    total.backward();
    sgd.step();
    totals.push_back(total.item<double>());
  }
  return totals;
}

// detectron2's Misc/*_syncbn recipes' "4conv1fc" box head: 4 convs with SyncBN, one FC, on a world
// of one (no process group: SyncBN is BatchNorm over the local batch). It trains: finite losses
// that fall over a few steps on the same images.
TEST(RoIHeads, FourConvOneFcSyncBNBoxHeadTrains) {
  torch::manual_seed(0);
  auto config = small_config({"MODEL.ROI_BOX_HEAD.NUM_CONV=4", "MODEL.ROI_BOX_HEAD.NUM_FC=1",
                              "MODEL.ROI_BOX_HEAD.NORM=SyncBN"});
  auto model = build_detector(config);
  auto params = model->named_parameters();
  EXPECT_TRUE(params.contains("roi_heads.box_head.3.0.weight"));
  EXPECT_FALSE(params.contains("roi_heads.box_head.3.0.bias"));  // no bias before a norm
  auto* rcnn = dynamic_cast<GeneralizedRCNNImpl*>(model.get());
  ASSERT_NE(rcnn, nullptr);
  auto* head = rcnn->roi_heads->box_head->as<FastRCNNConvFCHeadImpl>();
  ASSERT_NE(head, nullptr);
  EXPECT_NE(head->layers[0]->as<ConvNormReLUImpl>(), nullptr);
  EXPECT_NE(
      head->layers[0]->as<ConvNormReLUImpl>()->norm.ptr()->as<distributed::SyncBatchNorm2dImpl>(),
      nullptr);
  EXPECT_EQ(head->output_size(), 32);
  const auto totals = train_steps(*model, 8, false);
  const double first = (totals[0] + totals[1]) / 2, last = (totals[6] + totals[7]) / 2;
  std::printf("4conv1fc + SyncBN: total loss %.4f (steps 1-2) -> %.4f (steps 7-8)\n", first, last);
  EXPECT_LT(last, 0.9 * first) << "losses did not fall: first " << first << ", last " << last;
}

// Every norm name works in both heads (the convs lose their bias; FrozenBN's statistics are
// buffers).
TEST(RoIHeads, EveryNormTrainsInTheBoxAndMaskHeads) {
  for (const std::string norm : {"GN", "BN", "FrozenBN", "SyncBN"}) {
    SCOPED_TRACE(norm);
    torch::manual_seed(0);
    auto model = build_detector(small_config(
        {"MODEL.MASK_ON=true", "MODEL.ROI_BOX_HEAD.NUM_CONV=2", "MODEL.ROI_BOX_HEAD.NUM_FC=1",
         "MODEL.ROI_BOX_HEAD.NORM=" + norm, "MODEL.ROI_MASK_HEAD.NORM=" + norm}));
    auto tensors = state_dict(*model);
    EXPECT_TRUE(tensors.count("roi_heads.box_head.1.1.weight"));
    EXPECT_TRUE(tensors.count("roi_heads.mask_head.1.1.weight"));
    EXPECT_FALSE(tensors.count("roi_heads.mask_head.1.0.bias"));
    EXPECT_EQ(train_steps(*model, 2, true).size(), 2u);
    model->eval();
    torch::NoGradGuard no_grad;
    auto detections = model->detect(small_images());
    ASSERT_EQ(detections.size(), 2u);
    EXPECT_EQ(detections[0].masks.size(2), 96);
  }
}

// A box head registered by name is what MODEL.ROI_BOX_HEAD.NAME builds, given the ROI_BOX_HEAD
// options; the box predictor takes its output width.
struct MeanPoolHeadImpl : BoxHeadImpl {
  explicit MeanPoolHeadImpl(const BoxHeadOptions& o) : width(o.fc_dim()) {
    fc = register_module("fc", torch::nn::Linear(o.in_channels(), width));
  }
  torch::Tensor forward(const torch::Tensor& x) override {
    return torch::relu(fc->forward(x.mean({2, 3})));
  }
  int64_t output_size() const override { return width; }
  int64_t width;
  torch::nn::Linear fc{nullptr};
};

TEST(RoIHeads, RegisteredBoxHeadIsBuiltByName) {
  static int built = 0;  // static: the registry outlives this test
  register_box_head("MeanPoolHead", [](const BoxHeadOptions& o) {
    ++built;
    EXPECT_EQ(o.in_channels(), 32);  // MODEL.FPN.OUT_CHANNELS
    EXPECT_EQ(o.pool_size(), 7);     // MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION
    return std::make_shared<MeanPoolHeadImpl>(o);
  });
  const auto names = registered_box_heads();
  EXPECT_NE(std::find(names.begin(), names.end(), "MeanPoolHead"), names.end());
  torch::manual_seed(0);
  auto model = build_detector(
      small_config({"MODEL.ROI_BOX_HEAD.NAME=MeanPoolHead", "MODEL.ROI_BOX_HEAD.FC_DIM=24"}));
  EXPECT_EQ(built, 1);
  auto params = model->named_parameters();
  EXPECT_TRUE(params.contains("roi_heads.box_head.fc.weight"));
  EXPECT_FALSE(params.contains("roi_heads.box_head.fc6.weight"));
  EXPECT_EQ(params["roi_heads.box_predictor.cls_score.weight"].sizes(),
            (torch::IntArrayRef{4, 24}));
  for (double total : train_steps(*model, 2, false)) EXPECT_TRUE(std::isfinite(total));
}

struct TinyMaskHeadImpl : MaskHeadImpl {
  explicit TinyMaskHeadImpl(const MaskHeadOptions& o) {
    up = register_module(
        "tiny_mask",
        torch::nn::ConvTranspose2d(
            torch::nn::ConvTranspose2dOptions(o.in_channels(), o.num_classes(), 2).stride(2)));
  }
  torch::Tensor forward(const torch::Tensor& x) override { return up->forward(x); }
  torch::nn::ConvTranspose2d up{nullptr};
};

TEST(RoIHeads, RegisteredMaskHeadIsBuiltByName) {
  register_mask_head("TinyMaskHead", [](const MaskHeadOptions& o) {
    return std::make_shared<TinyMaskHeadImpl>(o);
  });
  torch::manual_seed(0);
  auto model =
      build_detector(small_config({"MODEL.MASK_ON=true", "MODEL.ROI_MASK_HEAD.NAME=TinyMaskHead"}));
  auto params = model->named_parameters();
  EXPECT_TRUE(params.contains("roi_heads.tiny_mask.weight"));  // the head's parts, by their names
  EXPECT_FALSE(params.contains("roi_heads.mask_predictor.conv5_mask.weight"));
  for (double total : train_steps(*model, 1, true)) EXPECT_TRUE(std::isfinite(total));
}

TEST(RoIHeads, UnknownHeadNamesListTheRegisteredOnes) {
  auto config = small_config({"MODEL.ROI_BOX_HEAD.NAME=FastRCNNConvFCHeadd"});  // the schema lets
                                                                                // any name through
  try {
    build_detector(config);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("FastRCNNConvFCHeadd"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("MODEL.ROI_BOX_HEAD.NAME"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("FastRCNNConvFCHead"), std::string::npos) << e.hint();
  }
  try {
    build_detector(small_config({"MODEL.MASK_ON=true", "MODEL.ROI_MASK_HEAD.NAME=Nope"}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Nope"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("MaskRCNNConvUpsampleHead"), std::string::npos) << e.hint();
  }
  EXPECT_THROW(build_box_head("", BoxHeadOptions(8, 5)), Error);
}

}  // namespace
}  // namespace largedet::modeling
