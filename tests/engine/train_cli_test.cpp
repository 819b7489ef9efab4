// `largedet train`'s command line as a detectron2 user types it: --config-file is ours too, and
// train_net.py's --num-gpus and --eval-only get the LargeDet command that does the same.
#include <gtest/gtest.h>

#include <string>

#include "train_fixture.h"

namespace {

using largedet::test::quote;
using largedet::test::run_shell;
using largedet::test::TempDir;
using largedet::test::write_tiny_recipe;

TEST(TrainCli, Detectron2FlagsGetTheirLargeDetEquivalent) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  const std::string train = quote(LARGEDET_CLI) + " train --config-file " + quote(recipe);
  auto run = run_shell(train + " --num-gpus 8");
  EXPECT_NE(run.code, 0);
  EXPECT_NE(
      run.output.find("largedet launch --nproc-per-node 8 -- largedet train --config " + recipe),
      std::string::npos)
      << run.output;
  run = run_shell(train + " --eval-only");
  EXPECT_NE(run.code, 0);
  EXPECT_NE(run.output.find("largedet evaluate --config " + recipe + " --weights"),
            std::string::npos)
      << run.output;
  // --config-file reaches the recipe: a bad override in it is refused by key, not as a flag.
  run = run_shell(train + " --output " + quote(dir.path() + "/run") + " SOLVER.NO_SUCH_KEY=1");
  EXPECT_NE(run.code, 0);
  EXPECT_NE(run.output.find("unknown config key 'SOLVER.NO_SUCH_KEY'"), std::string::npos)
      << run.output;
}

// config --dump refuses what train refuses before reading data: checks across keys (made when the
// model is built) and the batch split, not only each key's own value.
TEST(TrainCli, ConfigDumpRunsTheChecksTrainRuns) {
  const std::string dump = quote(LARGEDET_CLI) + " config --dump --config " +
                           quote(std::string(LARGEDET_SOURCE_DIR) + "/configs/synthetic/demo.yaml");
  auto run = run_shell(dump + " MODEL.RESNETS.RES2_OUT_CHANNELS=64");
  EXPECT_NE(run.code, 0) << run.output;
  // The hint names the width the recipe uses (16 in the demo), not ResNet-18's default 64.
  EXPECT_NE(run.output.find("RES2_OUT_CHANNELS: 16 (this recipe's WIDTH_PER_GROUP)"),
            std::string::npos)
      << run.output;
  // A short side of 60000 with a long side of 100000 once asked the allocator for 115 GB.
  run = run_shell(dump + " 'INPUT.MIN_SIZE_TRAIN=[60000]' INPUT.MAX_SIZE_TRAIN=100000");
  EXPECT_NE(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("INPUT.MIN_SIZE_TRAIN 60000 with INPUT.MAX_SIZE_TRAIN 100000"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("INPUT.MAX_IMAGE_PIXELS"), std::string::npos) << run.output;
  run = run_shell(dump + " 'INPUT.MIN_SIZE_TRAIN=[60000]'");  // capped at 1333: fine
  EXPECT_EQ(run.code, 0) << run.output;
  run = run_shell(dump + " SOLVER.IMS_PER_BATCH=6 SOLVER.IMS_PER_DEVICE=4");
  EXPECT_NE(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("IMS_PER_DEVICE"), std::string::npos) << run.output;
  run = run_shell(dump);
  EXPECT_EQ(run.code, 0) << run.output;
  EXPECT_NE(run.output.find("SOLVER:"), std::string::npos);
}

// A FIFO where a file is expected is refused at once (a reader would block forever in open()).
TEST(TrainCli, SpecialFilesAsInputsAreRefusedByName) {
  TempDir dir;
  const std::string fifo = dir.path() + "/recipe.yaml";
  ASSERT_EQ(run_shell("mkfifo " + quote(fifo)).code, 0);
  auto run =
      run_shell("timeout 20 " + quote(LARGEDET_CLI) + " config --dump --config " + quote(fifo));
  EXPECT_NE(run.code, 0);
  EXPECT_NE(run.code, 124) << "blocked on the FIFO";
  EXPECT_NE(run.output.find("the recipe is a FIFO, not a regular file"), std::string::npos)
      << run.output;
  run = run_shell("timeout 20 " + quote(LARGEDET_CLI) + " evaluate -a " + quote(fifo) + " -r " +
                  quote(fifo));
  EXPECT_NE(run.code, 0);
  EXPECT_NE(run.code, 124) << "blocked on the FIFO";
  EXPECT_NE(run.output.find("is a FIFO"), std::string::npos) << run.output;
  run = run_shell("timeout 20 " + quote(LARGEDET_CLI) + " config --dump --config /dev/zero");
  EXPECT_NE(run.code, 124) << "read /dev/zero without end";
  EXPECT_NE(run.output.find("a character device"), std::string::npos) << run.output;
}

}  // namespace
