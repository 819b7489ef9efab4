// Recipes as a detectron2 user brings them: detectron2-style Faster R-CNN, Mask R-CNN, RetinaNet
// and SyncBN recipes (written here the way detectron2's model zoo writes them) land every value
// where detectron2 puts it, and `train` on them fails only for the missing data or weights, saying
// where it looked. And every recipe under configs/ loads and builds its model, so none rots.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/shell.h"
#include "largedet/core/config.h"
#include "largedet/core/error.h"
#include "largedet/data/synthetic.h"
#include "largedet/engine/runtime.h"
#include "largedet/engine/trainer.h"
#include "largedet/modeling/build.h"
#include "largedet/modeling/detector.h"
#include "temp_dir.h"
#include "train_fixture.h"

namespace {

namespace fs = std::filesystem;
using largedet::Config;
using largedet::Error;

const char* kBaseRcnnFpn = R"(MODEL:
  META_ARCHITECTURE: "GeneralizedRCNN"
  BACKBONE:
    NAME: "build_resnet_fpn_backbone"
  RESNETS:
    OUT_FEATURES: ["res2", "res3", "res4", "res5"]
  FPN:
    IN_FEATURES: ["res2", "res3", "res4", "res5"]
  ANCHOR_GENERATOR:
    SIZES: [[32], [64], [128], [256], [512]]  # One size for each in feature map
    ASPECT_RATIOS: [[0.5, 1.0, 2.0]]  # Three aspect ratios (same for all in feature maps)
  RPN:
    IN_FEATURES: ["p2", "p3", "p4", "p5", "p6"]
    PRE_NMS_TOPK_TRAIN: 2000  # Per FPN level
    PRE_NMS_TOPK_TEST: 1000  # Per FPN level
    POST_NMS_TOPK_TRAIN: 1000
    POST_NMS_TOPK_TEST: 1000
  ROI_HEADS:
    NAME: "StandardROIHeads"
    IN_FEATURES: ["p2", "p3", "p4", "p5"]
  ROI_BOX_HEAD:
    NAME: "FastRCNNConvFCHead"
    NUM_FC: 2
    POOLER_RESOLUTION: 7
  ROI_MASK_HEAD:
    NAME: "MaskRCNNConvUpsampleHead"
    NUM_CONV: 4
    POOLER_RESOLUTION: 14
DATASETS:
  TRAIN: ("coco_2017_train",)
  TEST: ("coco_2017_val",)
SOLVER:
  IMS_PER_BATCH: 16
  BASE_LR: 0.02
  STEPS: (60000, 80000)
  MAX_ITER: 90000
INPUT:
  MIN_SIZE_TRAIN: (640, 672, 704, 736, 768, 800)
VERSION: 2
)";

const char* kFasterRcnn = R"(_BASE_: "../Base-RCNN-FPN.yaml"
MODEL:
  WEIGHTS: "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
  MASK_ON: False
  RESNETS:
    DEPTH: 50
)";

const char* kMaskRcnn = R"(_BASE_: "../Base-RCNN-FPN.yaml"
MODEL:
  WEIGHTS: "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
  MASK_ON: True
  RESNETS:
    DEPTH: 50
SOLVER:
  STEPS: (210000, 250000)
  MAX_ITER: 270000
)";

// detectron2's Base-RetinaNet.yaml with its anchor sizes written out (its file computes them
// with a Python expression, which we refuse with a message instead).
const char* kRetinaNet = R"(MODEL:
  META_ARCHITECTURE: "RetinaNet"
  BACKBONE:
    NAME: "build_retinanet_resnet_fpn_backbone"
  RESNETS:
    OUT_FEATURES: ["res3", "res4", "res5"]
    DEPTH: 50
  ANCHOR_GENERATOR:
    SIZES: [[32, 40.31747359663594, 50.79683366298238], [64, 80.63494719327188, 101.59366732596476], [128, 161.26989438654377, 203.18733465192952], [256, 322.53978877308754, 406.37466930385904], [512, 645.0795775461751, 812.7493386077181]]
  FPN:
    IN_FEATURES: ["res3", "res4", "res5"]
  RETINANET:
    IOU_THRESHOLDS: [0.4, 0.5]
    IOU_LABELS: [0, -1, 1]
    SMOOTH_L1_LOSS_BETA: 0.0
DATASETS:
  TRAIN: ("coco_2017_train",)
  TEST: ("coco_2017_val",)
SOLVER:
  IMS_PER_BATCH: 16
  BASE_LR: 0.01  # Note that RetinaNet uses a different default learning rate
  STEPS: (60000, 80000)
  MAX_ITER: 90000
INPUT:
  MIN_SIZE_TRAIN: (640, 672, 704, 736, 768, 800)
VERSION: 2
)";

// detectron2's Misc/mask_rcnn_R_50_FPN_3x_syncbn.yaml, 4conv1fc box head included, written for
// 8 GPUs.
const char* kSyncBn = R"(_BASE_: "../Base-RCNN-FPN.yaml"
MODEL:
  WEIGHTS: "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
  MASK_ON: True
  RESNETS:
    DEPTH: 50
    NORM: "SyncBN"
    STRIDE_IN_1X1: True
  FPN:
    NORM: "SyncBN"
  ROI_BOX_HEAD:
    NAME: "FastRCNNConvFCHead"
    NUM_CONV: 4
    NUM_FC: 1
    NORM: "SyncBN"
  ROI_MASK_HEAD:
    NORM: "SyncBN"
SOLVER:
  # 3x schedule
  STEPS: (210000, 250000)
  MAX_ITER: 270000
  REFERENCE_WORLD_SIZE: 8
)";

class Detectron2Recipes : public testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(dir_.path() + "/d2/COCO-Detection");
    std::ofstream(dir_.path() + "/d2/Base-RCNN-FPN.yaml") << kBaseRcnnFpn;
    write("faster_rcnn_R_50_FPN_1x.yaml", kFasterRcnn);
    write("mask_rcnn_R_50_FPN_3x.yaml", kMaskRcnn);
    write("retinanet_R_50_FPN_1x.yaml", kRetinaNet);
    write("mask_rcnn_R_50_FPN_3x_syncbn.yaml", kSyncBn);
    setenv("DETECTRON2_DATASETS", (dir_.path() + "/datasets").c_str(), 1);
  }
  void TearDown() override { unsetenv("DETECTRON2_DATASETS"); }
  void write(const std::string& name, const char* text) { std::ofstream(recipe(name)) << text; }
  std::string recipe(const std::string& name) const {
    return dir_.path() + "/d2/COCO-Detection/" + name;
  }
  Config resolved(const std::string& name, int world_size = 1) {
    Config c = Config::from_file(recipe(name));
    largedet::engine::resolve_recipe(c, world_size);
    return c;
  }
  std::string datasets() const { return dir_.path() + "/datasets"; }
  largedet::test::TempDir dir_;
};

TEST_F(Detectron2Recipes, FasterRcnnValuesLandWhereDetectron2PutsThem) {
  Config c = resolved("faster_rcnn_R_50_FPN_1x.yaml");
  EXPECT_EQ(c.get<std::string>("MODEL.META_ARCHITECTURE"), "GeneralizedRCNN");
  EXPECT_EQ(c.get<int>("MODEL.RESNETS.DEPTH"), 50);
  EXPECT_FALSE(c.get<bool>("MODEL.MASK_ON"));
  EXPECT_EQ(c.get<std::string>("MODEL.WEIGHTS"), "detectron2://ImageNetPretrained/MSRA/R-50.pkl");
  EXPECT_EQ(c.get<int>("MODEL.RPN.POST_NMS_TOPK_TRAIN"), 1000);
  EXPECT_EQ(c.get<int>("MODEL.ROI_BOX_HEAD.POOLER_RESOLUTION"), 7);
  EXPECT_EQ(c.get<std::vector<int64_t>>("SOLVER.STEPS"), (std::vector<int64_t>{60000, 80000}));
  EXPECT_EQ(c.get<int64_t>("SOLVER.MAX_ITER"), 90000);
  EXPECT_DOUBLE_EQ(c.get<double>("SOLVER.BASE_LR"), 0.02);  // meant for IMS_PER_BATCH 16
  EXPECT_EQ(c.get<std::vector<int>>("INPUT.MIN_SIZE_TRAIN"),
            (std::vector<int>{640, 672, 704, 736, 768, 800}));
  EXPECT_EQ(c.get<std::string>("DATASETS.TRAIN_ANNOTATIONS"),
            datasets() + "/coco/annotations/instances_train2017.json");
  EXPECT_EQ(c.get<std::string>("DATASETS.TRAIN_IMAGES"), datasets() + "/coco/train2017");
  EXPECT_EQ(c.get<std::string>("DATASETS.TEST_ANNOTATIONS"),
            datasets() + "/coco/annotations/instances_val2017.json");
  EXPECT_DOUBLE_EQ(c.get<double>("SOLVER.WEIGHT_DECAY_BIAS"), c.get<double>("SOLVER.WEIGHT_DECAY"));
}

TEST_F(Detectron2Recipes, MaskRetinaNetAndSyncBnValuesLand) {
  Config mask = resolved("mask_rcnn_R_50_FPN_3x.yaml");
  EXPECT_TRUE(mask.get<bool>("MODEL.MASK_ON"));
  EXPECT_EQ(mask.get<int>("MODEL.ROI_MASK_HEAD.NUM_CONV"), 4);
  EXPECT_EQ(mask.get<int64_t>("SOLVER.MAX_ITER"), 270000);

  Config retina = resolved("retinanet_R_50_FPN_1x.yaml");
  EXPECT_EQ(retina.get<std::string>("MODEL.META_ARCHITECTURE"), "RetinaNet");
  EXPECT_EQ(retina.get<std::vector<double>>("MODEL.RETINANET.IOU_THRESHOLDS"),
            (std::vector<double>{0.4, 0.5}));
  EXPECT_DOUBLE_EQ(retina.get<double>("MODEL.RETINANET.SMOOTH_L1_LOSS_BETA"), 0.0);
  EXPECT_DOUBLE_EQ(retina.get<double>("SOLVER.BASE_LR"), 0.01);
  const auto sizes = retina.get<std::vector<std::vector<double>>>("MODEL.ANCHOR_GENERATOR.SIZES");
  ASSERT_EQ(sizes.size(), 5u);
  EXPECT_EQ(sizes[0].size(), 3u);
  auto options = largedet::modeling::retinanet_options_from_config(retina);
  EXPECT_EQ(options.anchor_sizes, sizes);
  EXPECT_DOUBLE_EQ(options.smooth_l1_beta, 0.0);
  EXPECT_EQ(options.backbone.returned_layers, (std::vector<int64_t>{2, 3, 4}));

  // Written for 8 GPUs, run on 16: detectron2's auto_scale_workers doubles batch and LR and
  // halves the schedule.
  Config sync = resolved("mask_rcnn_R_50_FPN_3x_syncbn.yaml", 16);
  EXPECT_EQ(sync.get<std::string>("MODEL.RESNETS.NORM"), "SyncBN");
  EXPECT_EQ(sync.get<std::string>("MODEL.FPN.NORM"), "SyncBN");
  EXPECT_TRUE(sync.get<bool>("MODEL.RESNETS.STRIDE_IN_1X1"));
  EXPECT_EQ(sync.get<int64_t>("SOLVER.IMS_PER_BATCH"), 32);
  EXPECT_DOUBLE_EQ(sync.get<double>("SOLVER.BASE_LR"), 0.04);
  EXPECT_EQ(sync.get<int64_t>("SOLVER.MAX_ITER"), 135000);
  EXPECT_EQ(sync.get<std::vector<int64_t>>("SOLVER.STEPS"), (std::vector<int64_t>{105000, 125000}));
  auto rcnn = largedet::modeling::rcnn_options_from_config(sync);
  EXPECT_TRUE(rcnn.backbone.stride_in_1x1);
  EXPECT_EQ(rcnn.backbone.norm, "SyncBN");
  EXPECT_EQ(rcnn.roi_heads.box_num_conv, 4);
  EXPECT_EQ(rcnn.roi_heads.box_num_fc, 1);
  EXPECT_EQ(rcnn.roi_heads.box_norm, "SyncBN");
  EXPECT_EQ(rcnn.roi_heads.mask_norm, "SyncBN");
  // The model builds: 4 convs with norms, then one FC, in the box head.
  auto model = largedet::modeling::build_detector(sync);
  auto params = model->named_parameters();
  EXPECT_TRUE(params.contains("roi_heads.box_head.3.0.weight"));
  EXPECT_TRUE(params.contains("roi_heads.box_head.3.1.weight"));  // SyncBN's affine weight
  EXPECT_FALSE(params.contains("roi_heads.box_head.3.0.bias"));   // no bias before a norm
  EXPECT_TRUE(params.contains("roi_heads.box_head.5.weight"));    // the FC after Flatten
  EXPECT_FALSE(params.contains("roi_heads.box_head.7.weight"));
  EXPECT_TRUE(params.contains("roi_heads.mask_head.3.1.weight"));
}

TEST_F(Detectron2Recipes, WhatWeDoNotBuildIsRefusedByName) {
  // Dilation in res5, which detectron2 can build and we cannot.
  write("dilated.yaml",
        "_BASE_: \"../Base-RCNN-FPN.yaml\"\nMODEL:\n  RESNETS:\n    RES5_DILATION: 2\n");
  try {
    Config::from_file(recipe("dilated.yaml"));
    FAIL() << "a dilated res5 loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("MODEL.RESNETS.RES5_DILATION"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("dilated.yaml:4"), std::string::npos) << e.what();
  }
  // An IN_FEATURES the architecture does not read.
  Config c = Config::from_file(recipe("faster_rcnn_R_50_FPN_1x.yaml"));
  c.apply_overrides({"MODEL.RPN.IN_FEATURES=[p2, p3]"});
  try {
    largedet::engine::resolve_recipe(c, 1);
    FAIL() << "RPN.IN_FEATURES [p2, p3] accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("set MODEL.RPN.IN_FEATURES: [p2, p3, p4, p5, p6]"),
              std::string::npos)
        << e.what();
  }
  // Several datasets per split, and a name we do not know.
  Config two = Config::from_file(recipe("faster_rcnn_R_50_FPN_1x.yaml"));
  two.apply_overrides({"DATASETS.TRAIN=(\"coco_2017_train\", \"coco_2014_train\")"});
  EXPECT_THROW(largedet::engine::resolve_recipe(two, 1), Error);
  Config voc = Config::from_file(recipe("faster_rcnn_R_50_FPN_1x.yaml"));
  voc.apply_overrides({"DATASETS.TRAIN=voc_2007_trainval"});
  try {
    largedet::engine::resolve_recipe(voc, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("coco_2017_train"), std::string::npos) << e.what();
  }
}

TEST_F(Detectron2Recipes, TrainFailsOnlyForMissingDataThenWeightsSayingWhere) {
  Config c = Config::from_file(recipe("faster_rcnn_R_50_FPN_1x.yaml"));
  largedet::engine::TrainOptions options;
  options.output_dir = dir_.path() + "/run";
  try {
    largedet::engine::train(c, options);
    FAIL() << "trained without data";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(datasets() + "/coco/annotations/instances_train2017.json"),
              std::string::npos)
        << what;
    EXPECT_NE(what.find("coco_2017_train"), std::string::npos) << what;
    EXPECT_NE(what.find("DETECTRON2_DATASETS"), std::string::npos) << what;
  }
  // The data in detectron2's layout: now only the weights are missing.
  largedet::data::SynthOptions synth;
  synth.out_dir = dir_.path() + "/synth";
  synth.images = 8;
  synth.size = 64;
  synth.val_fraction = 0.25;
  largedet::data::write_synthetic_coco(synth);
  fs::create_directories(datasets() + "/coco/annotations");
  fs::copy_file(synth.out_dir + "/annotations/instances_train.json",
                datasets() + "/coco/annotations/instances_train2017.json");
  fs::copy_file(synth.out_dir + "/annotations/instances_val.json",
                datasets() + "/coco/annotations/instances_val2017.json");
  fs::create_directory_symlink(synth.out_dir + "/train", datasets() + "/coco/train2017");
  fs::create_directory_symlink(synth.out_dir + "/val", datasets() + "/coco/val2017");
  c.apply_overrides({"MODEL.ROI_HEADS.NUM_CLASSES=4"});
  try {
    largedet::engine::train(c, options);
    FAIL() << "trained without weights";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("detectron2://ImageNetPretrained/MSRA/R-50.pkl"), std::string::npos)
        << what;
    EXPECT_NE(what.find("tools/convert_torchvision.py"), std::string::npos) << what;
  }
}

TEST_F(Detectron2Recipes, ConfigCommandDumpsEffectiveValuesAndDescribesKeys) {
  using largedet::test::quote;
  const std::string cli = LARGEDET_CLI;
  auto dump = largedet::test::run_shell("DETECTRON2_DATASETS=" + quote(datasets()) + " " + cli +
                                        " config --dump -c " +
                                        quote(recipe("faster_rcnn_R_50_FPN_1x.yaml")));
  ASSERT_EQ(dump.code, 0) << dump.output;
  EXPECT_NE(dump.output.find("STEPS: [60000, 80000]"), std::string::npos) << dump.output;
  EXPECT_NE(dump.output.find("TRAIN_ANNOTATIONS: " + datasets() +
                             "/coco/annotations/instances_train2017.json"),
            std::string::npos)
      << dump.output;
  auto raw = largedet::test::run_shell(cli + " config --dump --raw -c " +
                                       quote(recipe("faster_rcnn_R_50_FPN_1x.yaml")));
  EXPECT_NE(raw.output.find("TRAIN_ANNOTATIONS: \"\""), std::string::npos) << raw.output;
  auto keys = largedet::test::run_shell(cli + " config --keys MODEL.RESNETS.DEPTH=101");
  ASSERT_EQ(keys.code, 0) << keys.output;
  EXPECT_NE(keys.output.find("MODEL.RESNETS.DEPTH = 101  # command line; detectron2 key"),
            std::string::npos)
      << keys.output;
  EXPECT_NE(keys.output.find("SOLVER.OPTIMIZER = sgd  # default; LargeDet key"), std::string::npos)
      << keys.output;
  // A wrong-typed value is refused by config as it is by train.
  auto bad = largedet::test::run_shell(cli + " config --dump SOLVER.MAX_ITER=lots");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.output.find("'SOLVER.MAX_ITER' must be an integer"), std::string::npos)
      << bad.output;
}

TEST(Detectron2Warning, TrainLogsTheLrAndTheDefaultsAVersion2RecipeReliesOn) {
  largedet::test::TempDir dir;
  const auto tiny = largedet::test::write_tiny_recipe(dir.path(), 8);
  auto run = largedet::test::run_shell(std::string(LARGEDET_CLI) + " train --config " +
                                       largedet::test::quote(tiny) + " --output " +
                                       largedet::test::quote(dir.path() + "/run") +
                                       " VERSION=2 SOLVER.MAX_ITER=1 SOLVER.REFERENCE_BATCH=2");
  ASSERT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("relies on"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("MODEL.RESNETS.STRIDE_IN_1X1: false here, true in detectron2"),
            std::string::npos)
      << run.output;
  // BASE_LR 0.01 meant for batch 2, trained at 4.
  EXPECT_NE(run.output.find("lr 0.02 = SOLVER.BASE_LR 0.01 x 2"), std::string::npos) << run.output;
  auto plain = largedet::test::run_shell(
      std::string(LARGEDET_CLI) + " train --config " + largedet::test::quote(tiny) + " --output " +
      largedet::test::quote(dir.path() + "/plain") + " SOLVER.MAX_ITER=1");
  ASSERT_EQ(plain.code, 0) << plain.output;
  EXPECT_EQ(plain.output.find("relies on"), std::string::npos) << plain.output;
}

TEST(ShippedRecipes, EveryRecipeLoadsAndBuildsItsModel) {
  const fs::path root = fs::path(LARGEDET_SOURCE_DIR) / "configs";
  int built = 0;
  for (const auto& entry : fs::recursive_directory_iterator(root)) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    Config c = Config::from_file(entry.path().string(), {"MODEL.DEVICE=cpu"});
    largedet::engine::resolve_recipe(c, 1);
    // Base-* files are not run directly, but must load and build all the same.
    c.apply_overrides({"INPUT.MIN_SIZE_TEST=64", "INPUT.MAX_SIZE_TEST=64"});
    auto model = largedet::modeling::build_detector(c);
    model->eval();
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> images = {torch::rand({3, 48, 64}) * 255};
    auto detections = model->detect(images);
    ASSERT_EQ(detections.size(), 1u);
    ++built;
  }
  EXPECT_GE(built, 12);  // the recipes of configs/ were found
}

}  // namespace
