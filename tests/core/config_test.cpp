#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "common/error_text.h"
#include "largedet/core/config.h"
#include "largedet/core/error.h"

namespace largedet {
namespace {

namespace fs = std::filesystem;

class ConfigTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ =
        fs::temp_directory_path() / ("largedet_config_" + std::to_string(::getpid()) + "_" +
                                     testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }
  std::string error_of(const std::function<void()>& f) { return test::error_of(f); }
  fs::path dir_;
};

TEST_F(ConfigTest, DefaultsHaveTypedValues) {
  Config c = Config::defaults();
  EXPECT_EQ(c.get<std::string>("SOLVER.OPTIMIZER"), "sgd");
  EXPECT_DOUBLE_EQ(c.get<double>("SOLVER.BASE_LR"), 0.02);
  EXPECT_EQ(c.get<int>("SOLVER.IMS_PER_BATCH"), 16);
  EXPECT_EQ(c.get<std::vector<int64_t>>("SOLVER.STEPS"), (std::vector<int64_t>{60000, 80000}));
  EXPECT_TRUE(c.get<bool>("SOLVER.LAMB.DECAY_SECOND_MOMENT"));
  EXPECT_EQ(c.source("SOLVER.BASE_LR"), "default");
  EXPECT_EQ(c.get_or<int>("NOT.A.KEY", 7), 7);
  auto sizes = c.get<std::vector<std::vector<double>>>("MODEL.ANCHOR_GENERATOR.SIZES");
  ASSERT_EQ(sizes.size(), 5u);
  EXPECT_EQ(sizes[4], std::vector<double>{512});
}

TEST_F(ConfigTest, FileThenOverridesWin) {
  std::string path = write("r.yaml", "SOLVER:\n  OPTIMIZER: pmd_lamb\n  BASE_LR: 0.5\n");
  Config c = Config::from_file(path, {"SOLVER.BASE_LR=0.25", "SOLVER.STEPS=[10, 20]"});
  EXPECT_EQ(c.get<std::string>("SOLVER.OPTIMIZER"), "pmd_lamb");
  EXPECT_DOUBLE_EQ(c.get<double>("SOLVER.BASE_LR"), 0.25);
  EXPECT_EQ(c.source("SOLVER.BASE_LR"), "command line");
  EXPECT_EQ(c.source("SOLVER.OPTIMIZER"), path + ":2");
  EXPECT_EQ(c.get<std::vector<int>>("SOLVER.STEPS"), (std::vector<int>{10, 20}));
}

TEST_F(ConfigTest, BaseRecipesChain) {
  write("base.yaml", "SOLVER:\n  BASE_LR: 0.1\n  MAX_ITER: 100\n");
  std::string child = write("child.yaml", "_BASE_: base.yaml\nSOLVER:\n  MAX_ITER: 50\n");
  Config c = Config::from_file(child);
  EXPECT_DOUBLE_EQ(c.get<double>("SOLVER.BASE_LR"), 0.1);
  EXPECT_EQ(c.get<int>("SOLVER.MAX_ITER"), 50);
  std::string loop = write("loop.yaml", "_BASE_: loop.yaml\n");
  EXPECT_NE(error_of([&] { Config::from_file(loop); }).find("loops"), std::string::npos);
}

TEST_F(ConfigTest, BaseThatIsADirectoryOrAListNamesTheFile) {
  fs::create_directories(dir_ / "recipes");
  std::string to_dir = write("to_dir.yaml", "_BASE_: recipes\n");
  std::string what = error_of([&] { Config::from_file(to_dir); });
  EXPECT_NE(what.find(to_dir + ":1: _BASE_ names a directory"), std::string::npos) << what;
  write("a.yaml", "SOLVER:\n  MAX_ITER: 5\n");
  std::string to_list = write("to_list.yaml", "_BASE_: [a.yaml, a.yaml]\n");
  what = error_of([&] { Config::from_file(to_list); });
  EXPECT_NE(what.find(to_list + ":1: _BASE_ must name one recipe file"), std::string::npos) << what;
}

TEST_F(ConfigTest, AHugeValueIsQuotedInPart) {
  const std::string huge(5 << 20, 'x');
  std::string what =
      error_of([&] { Config::from_file(write("r.yaml", ""), {"SOLVER.BASE_LR=" + huge}); });
  EXPECT_LT(what.size(), 400u) << what.substr(0, 400);
  EXPECT_NE(what.find("(5242880 characters)"), std::string::npos) << what.substr(0, 400);
  what = error_of([&] { Config::from_file(write("s.yaml", ""), {"SOLVER.OPTIMIZER=" + huge}); });
  EXPECT_LT(what.size(), 600u) << what.substr(0, 600);
}

TEST_F(ConfigTest, UnknownKeyInFileNamesFileLineAndClosestKey) {
  std::string path = write("typo.yaml", "SOLVER:\n  BASE_LR: 0.1\n  WARMUP_ITER: 10\n");
  std::string what = error_of([&] { Config::from_file(path); });
  EXPECT_NE(what.find(path + ":3"), std::string::npos) << what;
  EXPECT_NE(what.find("SOLVER.WARMUP_ITER'"), std::string::npos) << what;
  EXPECT_NE(what.find("did you mean 'SOLVER.WARMUP_ITERS'"), std::string::npos) << what;
}

TEST_F(ConfigTest, UnknownOverrideSuggestsClosestKey) {
  Config c = Config::defaults();
  std::string what = error_of([&] { c.apply_overrides({"SOLVER.BASE_LRR=0.1"}); });
  EXPECT_NE(what.find("command line"), std::string::npos);
  EXPECT_NE(what.find("did you mean 'SOLVER.BASE_LR'"), std::string::npos) << what;
  EXPECT_NE(error_of([&] { c.apply_overrides({"SOLVER.BASE_LR"}); }).find("KEY=VALUE"),
            std::string::npos);
  EXPECT_NE(error_of([&] { c.apply_overrides({"SOLVER=1"}); }).find("section"), std::string::npos);
}

// yaml-cpp stops a 100,000-deep document at its depth guard with the message "bad file": the
// error must say what is wrong instead.
TEST_F(ConfigTest, ADeeplyNestedFileIsRefusedSayingSo) {
  const std::string flow =
      write("deep.yaml", "A: " + std::string(100000, '[') + std::string(100000, ']') + "\n");
  std::string what = error_of([&] { Config::from_file(flow); });
  EXPECT_NE(what.find("nests deeper than yaml-cpp reads"), std::string::npos) << what;
  EXPECT_EQ(what.find("bad file"), std::string::npos) << what;
  std::string block = "A:\n";
  for (int i = 1; i < 3000; ++i) block += std::string(2 * size_t(i), ' ') + "k:\n";
  what = error_of([&] { Config::from_file(write("deep_block.yaml", block)); });
  EXPECT_NE(what.find("nests deeper than yaml-cpp reads"), std::string::npos) << what;
}

TEST_F(ConfigTest, AKeySetTwiceOrANumberOutOfRangeIsRefused) {
  std::string path =
      write("twice.yaml", "SOLVER:\n  BASE_LR: 0.1\n  MAX_ITER: 10\n  BASE_LR: 0.2\n");
  std::string what = error_of([&] { Config::from_file(path); });
  EXPECT_NE(what.find("'SOLVER.BASE_LR' is set twice"), std::string::npos) << what;
  EXPECT_NE(what.find(path + ":4"), std::string::npos) << what;
  // 1e-400 is not 0: refused rather than read as 0.
  Config c = Config::defaults();
  what = error_of([&] { c.apply_overrides({"SOLVER.BASE_LR=1e-400"}); });
  EXPECT_NE(what.find("SOLVER.BASE_LR"), std::string::npos) << what;
  what = error_of([&] { c.apply_overrides({"SOLVER.BASE_LR=1e400"}); });
  EXPECT_NE(what.find("SOLVER.BASE_LR"), std::string::npos) << what;
  c.apply_overrides({"SOLVER.BASE_LR=1e-30"});  // small, but what was written
  EXPECT_EQ(c.get<double>("SOLVER.BASE_LR"), 1e-30);
}

TEST_F(ConfigTest, ARenamedKeyNamesItsSuccessor) {
  Config c = Config::defaults();
  std::string what = error_of([&] { c.apply_overrides({"SOLVER.MAX_GRAD_NORM=1.0"}); });
  EXPECT_NE(what.find("SOLVER.CLIP_GRADIENTS.ENABLED=true"), std::string::npos) << what;
  EXPECT_NE(what.find("CLIP_TYPE=full_model"), std::string::npos) << what;
}

TEST_F(ConfigTest, DifferencesNameEachChangedKeyWithBothValues) {
  Config a = Config::defaults(), b = Config::defaults();
  EXPECT_TRUE(config_differences(a.dump(), b.dump()).empty());
  b.apply_overrides({"SOLVER.MAX_ITER=9000", "SOLVER.STEPS=[10, 20]"});
  const auto changed = config_differences(a.dump(), b.dump());
  ASSERT_EQ(changed.size(), 2u);
  EXPECT_EQ(changed[0], "SOLVER.MAX_ITER: 90000 -> 9000");
  EXPECT_EQ(changed[1].rfind("SOLVER.STEPS: ", 0), 0u) << changed[1];
  EXPECT_NE(changed[1].find("-> [10, 20]"), std::string::npos) << changed[1];
  // A key only one side has (an older checkpoint's config).
  const auto gone =
      config_differences("SOLVER:\n  OLD_KEY: 1\n  BASE_LR: 0.1\n", "SOLVER:\n  BASE_LR: 0.1\n");
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0], "SOLVER.OLD_KEY: 1 -> (unset)");
}

TEST_F(ConfigTest, TypeErrorsAreRefusedWhenSetNamingKeyAndSource) {
  // Refused at load, so `config --dump` and `train` refuse the same recipe.
  std::string path = write("bad.yaml", "SOLVER:\n  BASE_LR: fast\n");
  std::string what = error_of([&] { Config::from_file(path); });
  EXPECT_NE(what.find("'SOLVER.BASE_LR' must be a number"), std::string::npos) << what;
  EXPECT_NE(what.find(path + ":2"), std::string::npos) << what;
  Config c = Config::defaults();
  EXPECT_NE(error_of([&] { c.apply_overrides({"SOLVER.MAX_ITER=1.5"}); }).find("integer"),
            std::string::npos);
  EXPECT_NE(error_of([&] { c.apply_overrides({"SOLVER.NESTEROV=yes"}); }).find("boolean"),
            std::string::npos);
  EXPECT_NE(error_of([&] { c.apply_overrides({"SOLVER.STEPS=[1, x]"}); }).find("integers"),
            std::string::npos);
  EXPECT_NE(error_of([&] { c.apply_overrides({"MODEL.DEVICE=[cpu]"}); }).find("a string"),
            std::string::npos);
  // Nothing changed by the refused values.
  EXPECT_EQ(c.get<int64_t>("SOLVER.MAX_ITER"), 90000);
}

TEST_F(ConfigTest, RangesAndAllowedValues) {
  Config c = Config::defaults();
  std::string what = error_of([&] { c.apply_overrides({"MODEL.RPN.POSITIVE_FRACTION=1.5"}); });
  EXPECT_NE(what.find("above its maximum 1"), std::string::npos) << what;
  what = error_of([&] { c.apply_overrides({"SOLVER.IMS_PER_BATCH=0"}); });
  EXPECT_NE(what.find("below its minimum 1"), std::string::npos) << what;
  what = error_of([&] { c.apply_overrides({"DATALOADER.NUM_WORKERS=-1"}); });
  EXPECT_NE(what.find("'DATALOADER.NUM_WORKERS' is -1, below its minimum 0"), std::string::npos)
      << what;
  // A thread count no machine runs (it aborted the loader's thread creation).
  what = error_of([&] { c.apply_overrides({"DATALOADER.NUM_WORKERS=100000"}); });
  EXPECT_NE(what.find("above its maximum 256"), std::string::npos) << what;
  what = error_of([&] { c.apply_overrides({"NUM_THREADS=100000"}); });
  EXPECT_NE(what.find("above its maximum 1024"), std::string::npos) << what;
  what = error_of([&] { c.apply_overrides({"MODEL.RESNETS.DEPTH=42"}); });
  EXPECT_NE(what.find("use 18, 34, 50, 101, 152"), std::string::npos) << what;
  EXPECT_EQ(what.find("did you mean"), std::string::npos) << what;  // 42 is not "almost 18"
  what = error_of([&] { c.apply_overrides({"SOLVER.OPTIMIZER=lamm"}); });
  EXPECT_NE(what.find("did you mean 'lamb'"), std::string::npos) << what;
  what = error_of([&] { c.apply_overrides({"MODEL.RESNETS.RES5_DILATION=2"}); });
  EXPECT_NE(what.find("which LargeDet does not build (only 1"), std::string::npos) << what;
  // Equal values in other spellings pass: 1.0 for 1, True for true.
  c.apply_overrides({"MODEL.RPN.LOSS_WEIGHT=1", "MODEL.ROI_HEADS.PROPOSAL_APPEND_GT=True",
                     "MODEL.RPN.IOU_LABELS=[0, -1, 1]"});
}

TEST_F(ConfigTest, Detectron2ValueForms) {
  std::string path =
      write("d2.yaml",
            "SOLVER:\n  STEPS: (60000, 80000)\n"
            "DATASETS:\n  TRAIN: (\"coco_2017_train\",)\n"
            "INPUT:\n  MIN_SIZE_TRAIN: (640, 672, 704)\n"
            "MODEL:\n  MASK_ON: False\n"
            "  ANCHOR_GENERATOR:\n    ASPECT_RATIOS: [0.5, 1.0, 2.0]\n"
            "  RESNETS:\n    OUT_FEATURES: [\"res2\", \"res3\", \"res4\", \"res5\"]\n"
            "  ROI_HEADS:\n    NUM_CLASSES: 80\n");
  Config c = Config::from_file(path);
  EXPECT_EQ(c.get<std::vector<int64_t>>("SOLVER.STEPS"), (std::vector<int64_t>{60000, 80000}));
  EXPECT_EQ(c.get<std::vector<std::string>>("DATASETS.TRAIN"),
            std::vector<std::string>{"coco_2017_train"});
  EXPECT_EQ(c.get<std::vector<int>>("INPUT.MIN_SIZE_TRAIN"), (std::vector<int>{640, 672, 704}));
  EXPECT_FALSE(c.get<bool>("MODEL.MASK_ON"));
  // A flat list is detectron2's "same ratios for every level".
  EXPECT_EQ(c.get<std::vector<std::vector<double>>>("MODEL.ANCHOR_GENERATOR.ASPECT_RATIOS"),
            (std::vector<std::vector<double>>{{0.5, 1.0, 2.0}}));
  c.apply_overrides({"INPUT.MIN_SIZE_TRAIN=800"});
  EXPECT_EQ(c.get<std::vector<int>>("INPUT.MIN_SIZE_TRAIN"), std::vector<int>{800});
  // detectron2's Base-RetinaNet computes its sizes in Python; we say so instead of guessing.
  std::string eval = write("eval.yaml",
                           "MODEL:\n  ANCHOR_GENERATOR:\n    SIZES: !!python/object/apply:eval "
                           "[\"[[x, x * 2**(1.0/3)] for x in [32, 64]]\"]\n");
  std::string what = error_of([&] { Config::from_file(eval); });
  EXPECT_NE(what.find("Python expression"), std::string::npos) << what;
  EXPECT_NE(what.find("eval.yaml:3"), std::string::npos) << what;
}

TEST_F(ConfigTest, UnsupportedDetectron2KeysSaySoAndAcceptTheirDefault) {
  std::string path = write("kp.yaml", "MODEL:\n  KEYPOINT_ON: True\n");
  std::string what = error_of([&] { Config::from_file(path); });
  EXPECT_NE(what.find("detectron2 key MODEL.KEYPOINT_ON is not supported by LargeDet"),
            std::string::npos)
      << what;
  EXPECT_NE(what.find("kp.yaml:2"), std::string::npos) << what;
  // Writing detectron2's own default changes nothing and loads.
  std::string quiet = write("quiet.yaml",
                            "MODEL:\n  KEYPOINT_ON: False\n  LOAD_PROPOSALS: false\n"
                            "TEST:\n  AUG:\n    ENABLED: false\n");
  Config c = Config::from_file(quiet);
  EXPECT_FALSE(c.has("MODEL.KEYPOINT_ON"));
  what =
      error_of([&] { Config::from_file(write("tta.yaml", "TEST:\n  AUG:\n    ENABLED: true\n")); });
  EXPECT_NE(what.find("TEST.AUG.ENABLED is not supported"), std::string::npos) << what;
  // A whole unsupported section.
  what = error_of([&] {
    Config::from_file(write("kph.yaml", "MODEL:\n  ROI_KEYPOINT_HEAD:\n    NUM_KEYPOINTS: 17\n"));
  });
  EXPECT_NE(what.find("keypoint detection is not implemented"), std::string::npos) << what;
  Config d = Config::defaults();
  what = error_of([&] { d.apply_overrides({"SOLVER.NUM_DECAYS=4"}); });
  EXPECT_NE(what.find("WarmupStepWithFixedGammaLR"), std::string::npos) << what;
}

TEST_F(ConfigTest, CopiesAreIndependent) {
  Config a = Config::defaults();
  Config b = a;
  b.apply_overrides({"SOLVER.BASE_LR=0.5"});
  EXPECT_DOUBLE_EQ(a.get<double>("SOLVER.BASE_LR"), 0.02);
  a = b;
  b.apply_overrides({"SOLVER.BASE_LR=0.25"});
  EXPECT_DOUBLE_EQ(a.get<double>("SOLVER.BASE_LR"), 0.5);
}

TEST_F(ConfigTest, Detectron2DifferencesListWhatARecipeDidNotSet) {
  Config c = Config::defaults();
  auto differences = c.detectron2_differences();
  auto mentions = [&](const std::string& key) {
    for (const auto& d : differences)
      if (d.rfind(key + ":", 0) == 0) return true;
    return false;
  };
  EXPECT_TRUE(mentions("MODEL.RESNETS.STRIDE_IN_1X1"));
  EXPECT_TRUE(mentions("MODEL.ROI_BOX_HEAD.POOLER_TYPE"));
  EXPECT_TRUE(mentions("MODEL.PIXEL_STD"));
  c.apply_overrides({"MODEL.RESNETS.STRIDE_IN_1X1=true"});
  differences = c.detectron2_differences();
  EXPECT_FALSE(mentions("MODEL.RESNETS.STRIDE_IN_1X1"));
}

TEST_F(ConfigTest, SyntaxErrorsAndMissingFiles) {
  std::string path = write("syntax.yaml", "SOLVER:\n  BASE_LR: [1, 2\n");
  EXPECT_NE(error_of([&] { Config::from_file(path); }).find("syntax.yaml:"), std::string::npos);
  EXPECT_NE(
      error_of([&] { Config::from_file((dir_ / "missing.yaml").string()); }).find("cannot open"),
      std::string::npos);
  std::string nested = write("nested.yaml", "SOLVER: 3\n");
  EXPECT_NE(error_of([&] { Config::from_file(nested); }).find("section"), std::string::npos);
}

TEST_F(ConfigTest, DumpRoundTrips) {
  Config c = Config::defaults();
  c.apply_overrides({"SOLVER.BASE_LR=0.125", "MODEL.ROI_HEADS.NUM_CLASSES=4", "MODEL.FPN.NORM=GN",
                     "SOLVER.STEPS=(10, 20)"});
  std::string path = write("dump.yaml", c.dump());
  Config again = Config::from_file(path);
  EXPECT_DOUBLE_EQ(again.get<double>("SOLVER.BASE_LR"), 0.125);
  EXPECT_EQ(again.get<int>("MODEL.ROI_HEADS.NUM_CLASSES"), 4);
  EXPECT_EQ(again.dump(), c.dump());
}

TEST(ClosestMatch, PicksNearestWithinReason) {
  EXPECT_EQ(closest_match("SOLVER.BASE_LRR", {"SOLVER.BASE_LR", "SOLVER.MAX_ITER"}),
            "SOLVER.BASE_LR");
  EXPECT_EQ(closest_match("ZZZZZZZZ", {"SOLVER.BASE_LR"}), "");
}

}  // namespace
}  // namespace largedet
