#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "largedet/core/error.h"
#include "largedet/engine/checkpointer.h"
#include "temp_dir.h"

namespace largedet::engine {
namespace {

bool exists(const std::string& path) { return std::ifstream(path).good(); }

std::string serialize_for_crash_test() {
  return safetensors::serialize({{"w", torch::randn({64, 64})}}, {{"iteration", "10"}});
}

Checkpoint make(int64_t iteration) {
  Checkpoint c;
  c.iteration = iteration;
  c.model = {{"backbone.conv1.weight", torch::full({2, 3}, static_cast<float>(iteration))},
             {"head.bias", torch::arange(4)}};
  c.state = {{"optimizer", std::string("\0binary\xff state", 14)}, {"rng", "seed=7"}};
  c.metadata = {{"config", "SOLVER:\n  BASE_LR: 0.1\n"}};
  return c;
}

TEST(Checkpointer, RoundTripsModelStateAndMetadata) {
  test::TempDir dir;
  Checkpointer checkpointer(dir.path(), 3);
  EXPECT_FALSE(checkpointer.last().has_value());
  std::string path = checkpointer.save(make(100));
  EXPECT_EQ(path, dir.path() + "/model_0000100.safetensors");
  ASSERT_EQ(checkpointer.last().value(), path);
  Checkpoint loaded = Checkpointer::load(path);
  EXPECT_EQ(loaded.iteration, 100);
  EXPECT_TRUE(torch::equal(loaded.model.at("backbone.conv1.weight"), torch::full({2, 3}, 100.0f)));
  EXPECT_TRUE(torch::equal(loaded.model.at("head.bias"), torch::arange(4)));
  EXPECT_EQ(loaded.model.size(), 2u);
  EXPECT_EQ(loaded.state.at("optimizer"), std::string("\0binary\xff state", 14));
  EXPECT_EQ(loaded.state.at("rng"), "seed=7");
  EXPECT_EQ(loaded.metadata.at("config"), "SOLVER:\n  BASE_LR: 0.1\n");
}

TEST(Checkpointer, KeepsOnlyTheLastK) {
  test::TempDir dir;
  Checkpointer checkpointer(dir.path(), 2);
  for (int64_t it : {10, 20, 30, 40}) checkpointer.save(make(it));
  EXPECT_FALSE(exists(dir.path() + "/model_0000010.safetensors"));
  EXPECT_FALSE(exists(dir.path() + "/model_0000020.safetensors"));
  EXPECT_TRUE(exists(dir.path() + "/model_0000030.safetensors"));
  EXPECT_EQ(Checkpointer::load(checkpointer.last().value()).iteration, 40);
}

TEST(Checkpointer, ACrashWhileWritingLeavesThePreviousCheckpointLoadable) {
  test::TempDir dir;
  Checkpointer checkpointer(dir.path(), 3);
  checkpointer.save(make(5));
  // What a crash mid-write leaves behind: a partial temporary file beside the real ones.
  std::string partial = serialize_for_crash_test();
  std::ofstream(dir.path() + "/model_0000010.safetensors.tmp.4242", std::ios::binary)
      << partial.substr(0, partial.size() / 2);
  Checkpoint loaded = Checkpointer::load(checkpointer.last().value());
  EXPECT_EQ(loaded.iteration, 5);
  // A torn checkpoint file itself is reported, not loaded.
  std::ofstream(dir.path() + "/torn.safetensors", std::ios::binary)
      << partial.substr(0, partial.size() - 3);
  EXPECT_THROW(Checkpointer::load(dir.path() + "/torn.safetensors"), Error);
}

}  // namespace
}  // namespace largedet::engine
