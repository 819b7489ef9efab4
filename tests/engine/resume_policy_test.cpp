// Where a run starts (docs/engine.md, "Checkpoints"): --resume takes the newest checkpoint that
// verifies, a run never starts from scratch over another's checkpoints unless told to, and the
// temporaries of an interrupted save are cleaned up.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>
#include <string>

#include "common/error_text.h"
#include "largedet/core/error.h"
#include "largedet/core/run_lock.h"
#include "largedet/engine/checkpointer.h"
#include "largedet/engine/trainer.h"
#include "train_fixture.h"

namespace {

using largedet::test::error_of;

using largedet::test::quote;
using largedet::test::run_shell;
using largedet::test::TempDir;
using largedet::test::tiny_config;
using largedet::test::write_tiny_recipe;

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

TEST(ResumePolicy, ResumesFromTheNewestIntactCheckpointAndNeverOverwritesOne) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  largedet::engine::TrainOptions options;
  options.output_dir = dir.path() + "/run";
  const std::string& run = options.output_dir;
  largedet::engine::train(tiny_config(recipe), options);  // checkpoints at 2 and 4
  ASSERT_TRUE(exists(run + "/model_0000002.safetensors"));
  ASSERT_TRUE(exists(run + "/model_0000004.safetensors"));

  // The newest damaged, the pointer gone, and a save killed halfway.
  largedet::test::overwrite_4k(run + "/model_0000004.safetensors", 8192);
  ::unlink((run + "/last_checkpoint").c_str());
  const std::string stale = run + "/model_0000006.safetensors.tmp.999999999";
  std::ofstream(stale) << std::string(1000, 'x');

  // Without --resume, the directory's checkpoints are not overwritten.
  std::string what = error_of([&] { largedet::engine::train(tiny_config(recipe), options); });
  EXPECT_NE(what.find("already holds checkpoints (newest " + run + "/model_0000004"),
            std::string::npos)
      << what;
  EXPECT_NE(what.find("--resume"), std::string::npos) << what;
  EXPECT_NE(what.find("--from-scratch"), std::string::npos) << what;

  options.resume = true;
  ::testing::internal::CaptureStderr();
  auto resumed = largedet::engine::train(tiny_config(recipe, {"SOLVER.MAX_ITER=5"}), options);
  const std::string log = ::testing::internal::GetCapturedStderr();
  // The warning names what changed.
  EXPECT_NE(log.find("the configuration differs from the one"), std::string::npos) << log;
  EXPECT_NE(log.find("SOLVER.MAX_ITER: 4 -> 5"), std::string::npos) << log;
  EXPECT_EQ(resumed.start_iteration, 2);  // model_0000004 fails its checksum
  EXPECT_EQ(resumed.iteration, 5);
  EXPECT_FALSE(exists(stale));

  options.resume = false;
  options.from_scratch = true;
  auto fresh = largedet::engine::train(tiny_config(recipe, {"SOLVER.MAX_ITER=2"}), options);
  EXPECT_EQ(fresh.start_iteration, 0);
  const auto run_output = run_shell("ls " + quote(run) + "/superseded_*/");
  EXPECT_NE(run_output.output.find("model_0000005.safetensors"), std::string::npos)
      << run_output.output;
  EXPECT_NE(run_output.output.find("model_final.safetensors"), std::string::npos)
      << run_output.output;
}

TEST(ResumePolicy, NoIntactCheckpointIsAnErrorNotAFreshStart) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  largedet::engine::TrainOptions options;
  options.output_dir = dir.path() + "/run";
  largedet::engine::train(tiny_config(recipe, {"SOLVER.MAX_ITER=2"}), options);
  largedet::test::overwrite_4k(options.output_dir + "/model_0000002.safetensors", 8192);
  options.resume = true;
  std::string what = error_of([&] { largedet::engine::train(tiny_config(recipe), options); });
  EXPECT_NE(what.find("none of the 1 checkpoints verifies"), std::string::npos) << what;
  EXPECT_TRUE(exists(options.output_dir + "/model_0000002.safetensors"));
}

// Two runs into one directory: the second is refused before it writes anything, naming the first.
TEST(ResumePolicy, ASecondRunIntoTheSameDirectoryIsRefused) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  largedet::engine::TrainOptions options;
  options.output_dir = dir.path() + "/run";
  ::mkdir(options.output_dir.c_str(), 0755);
  {
    largedet::RunLock running(options.output_dir, "train");
    const std::string what =
        error_of([&] { largedet::engine::train(tiny_config(recipe), options); });
    EXPECT_NE(what.find("another run is using this directory: train, PID"), std::string::npos)
        << what;
    EXPECT_FALSE(exists(options.output_dir + "/config.yaml"));
    EXPECT_FALSE(exists(options.output_dir + "/metrics.jsonl"));
  }
  largedet::engine::train(tiny_config(recipe, {"SOLVER.MAX_ITER=1"}), options);
  EXPECT_TRUE(exists(options.output_dir + "/model_final.safetensors"));
}

}  // namespace
