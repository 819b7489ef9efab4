#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

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
  std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no largedet::Error thrown";
    return "";
  }
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

TEST_F(ConfigTest, TypeErrorsNameKeyAndSource) {
  std::string path = write("bad.yaml", "SOLVER:\n  BASE_LR: fast\n  MAX_ITER: 1.5\n");
  Config c = Config::from_file(path);
  std::string what = error_of([&] { c.get<double>("SOLVER.BASE_LR"); });
  EXPECT_NE(what.find("'SOLVER.BASE_LR' must be a number"), std::string::npos) << what;
  EXPECT_NE(what.find(path + ":2"), std::string::npos) << what;
  EXPECT_NE(error_of([&] { c.get<int>("SOLVER.MAX_ITER"); }).find("integer"), std::string::npos);
  c.apply_overrides({"SOLVER.NESTEROV=yes"});
  EXPECT_NE(error_of([&] { c.get<bool>("SOLVER.NESTEROV"); }).find("boolean"), std::string::npos);
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
  c.apply_overrides({"SOLVER.BASE_LR=0.125", "MODEL.NUM_CLASSES=4"});
  std::string path = write("dump.yaml", c.dump());
  Config again = Config::from_file(path);
  EXPECT_DOUBLE_EQ(again.get<double>("SOLVER.BASE_LR"), 0.125);
  EXPECT_EQ(again.get<int>("MODEL.NUM_CLASSES"), 4);
  EXPECT_EQ(again.dump(), c.dump());
}

TEST(ClosestMatch, PicksNearestWithinReason) {
  EXPECT_EQ(closest_match("SOLVER.BASE_LRR", {"SOLVER.BASE_LR", "SOLVER.MAX_ITER"}),
            "SOLVER.BASE_LR");
  EXPECT_EQ(closest_match("ZZZZZZZZ", {"SOLVER.BASE_LR"}), "");
}

}  // namespace
}  // namespace largedet
