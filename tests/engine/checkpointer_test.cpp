#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>

#include "largedet/core/error.h"
#include "largedet/engine/checkpointer.h"
#include "temp_dir.h"
#include "train_fixture.h"

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

Checkpoint make_large(int64_t iteration) {
  Checkpoint c = make(iteration);
  c.model.emplace("backbone.res2.weight", torch::randn({64, 64}));
  return c;
}

TEST(Checkpointer, DamagedBytesAreACheckError) {
  test::TempDir dir;
  Checkpointer checkpointer(dir.path(), 0);
  const std::string path = checkpointer.save(make_large(10));
  ASSERT_GT(test::overwrite_4k(path, 6000), 8192);
  try {
    Checkpointer::load(path);
    FAIL() << "a damaged checkpoint loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("checksum mismatch in 1 tensor (backbone.res2.weight)"),
              std::string::npos)
        << e.what();
  }
}

TEST(Checkpointer, NewestIntactSkipsDamagedAndTruncatedOnes) {
  test::TempDir dir;
  Checkpointer checkpointer(dir.path(), 0);
  for (int64_t it : {10, 20, 30}) checkpointer.save(make_large(it));
  ASSERT_GT(test::overwrite_4k(dir.path() + "/model_0000030.safetensors", 6000), 8192);
  const std::string truncated = dir.path() + "/model_0000020.safetensors";
  std::string bytes;
  {
    std::ifstream in(truncated, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::ofstream(truncated, std::ios::binary | std::ios::trunc) << bytes.substr(0, bytes.size() / 2);
  std::vector<std::string> skipped;
  EXPECT_EQ(checkpointer.newest_intact(&skipped), dir.path() + "/model_0000010.safetensors");
  ASSERT_EQ(skipped.size(), 2u);
  EXPECT_NE(skipped[0].find("model_0000030.safetensors: "), std::string::npos) << skipped[0];
  EXPECT_NE(skipped[0].find("checksum mismatch"), std::string::npos) << skipped[0];
  EXPECT_NE(skipped[1].find("model_0000020.safetensors: "), std::string::npos) << skipped[1];
}

TEST(Checkpointer, SetAsideMovesEveryCheckpointIntoASubdirectory) {
  test::TempDir dir;
  Checkpointer checkpointer(dir.path(), 0);
  for (int64_t it : {10, 20}) checkpointer.save(make(it));
  std::ofstream(dir.path() + "/model_final.safetensors") << "weights";
  // The old run's TensorBoard events too (TensorBoard would mix them with the new run's).
  std::ofstream(dir.path() + "/events.out.tfevents.1796624215.vm.12339") << "events";
  std::ofstream(dir.path() + "/notes.txt") << "the user's own file";
  const std::string aside = checkpointer.set_aside();
  EXPECT_EQ(aside.rfind(dir.path() + "/superseded_", 0), 0u) << aside;
  EXPECT_TRUE(checkpointer.list().empty());
  EXPECT_FALSE(checkpointer.last().has_value());
  for (const char* name :
       {"/model_0000010.safetensors", "/model_0000020.safetensors", "/last_checkpoint",
        "/model_final.safetensors", "/events.out.tfevents.1796624215.vm.12339"})
    EXPECT_TRUE(exists(aside + name)) << name;
  EXPECT_FALSE(exists(dir.path() + "/events.out.tfevents.1796624215.vm.12339"));
  EXPECT_TRUE(exists(dir.path() + "/notes.txt"));
  EXPECT_NE(checkpointer.set_aside(), aside);  // a second one in the same second gets its own
}

TEST(Checkpointer, WeightsWithNaNAreRefusedByName) {
  test::TempDir dir;
  auto bad = torch::ones({3});
  bad[1] = std::numeric_limits<float>::quiet_NaN();
  const std::string path = dir.path() + "/w.safetensors";
  safetensors::save(path, {{"roi_heads.box_predictor.cls_score.weight", bad},
                           {"backbone.stem.conv1.weight", torch::ones({2})},
                           {"rpn.head.conv.weight", torch::full({2}, INFINITY)}});
  try {
    load_model_tensors(path);
    FAIL() << "NaN weights loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 weight tensor(s) hold NaN or inf: "
                                         "roi_heads.box_predictor.cls_score.weight, "
                                         "rpn.head.conv.weight"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace largedet::engine
