// AGVM in training (docs/solver.md, "AGVM"): two ranks through `largedet launch` end where one
// process does at the same global batch, the factors move and are logged, a resumed run continues
// them exactly, and a batch that cannot be halved is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "largedet/core/error.h"
#include "largedet/engine/trainer.h"
#include "largedet/tensor/safetensors.h"
#include "train_fixture.h"

namespace {

using largedet::test::quote;
using largedet::test::run_shell;
using largedet::test::TempDir;
using largedet::test::tiny_config;
using largedet::test::write_tiny_recipe;

// One image per forward, no random flip or scale, norms that do not mix images: the loader then
// deals image k of each global batch to the same forward index on 1 rank x 4 micro-batches and
// 2 ranks x 2, and AGVM's half A is images 0 and 1 in both layouts.
const std::vector<std::string> kAgvm = {"SOLVER.AGVM.ENABLED=true", "SOLVER.AGVM.INTERVAL=1",
                                        "SOLVER.AGVM.START_ITER=0", "SOLVER.AGVM.MOMENTUM=0.5",
                                        "SOLVER.IMS_PER_DEVICE=1",  "SOLVER.LOG_PERIOD=1",
                                        "SOLVER.MAX_ITER=3",        "MODEL.RESNETS.NORM=FrozenBN",
                                        "INPUT.RANDOM_FLIP=none",   "INPUT.MIN_SIZE_TRAIN=[72]"};

// iteration -> scalar name -> value, every line of metrics.jsonl merged.
std::map<int64_t, std::map<std::string, double>> scalars(const std::string& run_dir) {
  std::map<int64_t, std::map<std::string, double>> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto json = nlohmann::json::parse(line);
    for (const auto& [key, value] : json.items())
      if (value.is_number() && key != "iteration") out[json["iteration"]][key] = value;
  }
  return out;
}

std::string train_command(const std::string& recipe, const std::string& out) {
  std::string command =
      quote(LARGEDET_CLI) + " train --config " + quote(recipe) + " --output " + quote(out);
  for (const auto& o : kAgvm) command += " " + quote(o);
  return command;
}

TEST(AgvmTraining, TwoRanksEqualOneProcessAtTheSameGlobalBatch) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  auto one = run_shell(train_command(recipe, dir.path() + "/one"));
  ASSERT_EQ(one.code, 0) << one.output;
  EXPECT_NE(one.output.find("AGVM over backbone"), std::string::npos) << one.output;
  EXPECT_NE(one.output.find("1 rank(s) x 4 micro-batch(es) x 1"), std::string::npos);
  auto two = run_shell(quote(LARGEDET_CLI) + " launch --nproc-per-node 2 --master-port 0 -- " +
                       train_command(recipe, dir.path() + "/two"));
  ASSERT_EQ(two.code, 0) << two.output;
  EXPECT_NE(two.output.find("2 rank(s) x 2 micro-batch(es) x 1"), std::string::npos);

  const auto a = scalars(dir.path() + "/one"), b = scalars(dir.path() + "/two");
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  bool moved = false;
  for (const auto& [iteration, values] : a) {
    ASSERT_TRUE(b.count(iteration)) << iteration;
    for (const std::string part : {"backbone", "fpn", "rpn", "box_head"}) {
      const std::string key = "agvm/" + part + "/factor";
      ASSERT_TRUE(values.count(key)) << key << " at " << iteration;
      EXPECT_NEAR(values.at(key), b.at(iteration).at(key), 1e-4) << key << " at " << iteration;
      moved = moved || std::abs(values.at(key) - 1.0) > 1e-3;
    }
    // The losses of iterations 2 and 3 come from weights that AGVM's factors stepped.
    EXPECT_NEAR(values.at("total_loss"), b.at(iteration).at("total_loss"),
                1e-4 * std::abs(values.at("total_loss")))
        << "iteration " << iteration;
  }
  EXPECT_TRUE(moved) << "AGVM's factors never left 1";
}

TEST(AgvmTraining, ResumedRunContinuesTheFactorsExactly) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  std::vector<std::string> overrides = kAgvm;
  largedet::engine::TrainOptions straight;
  straight.output_dir = dir.path() + "/straight";
  overrides.push_back("SOLVER.MAX_ITER=4");
  largedet::engine::train(tiny_config(recipe, overrides), straight);
  largedet::engine::TrainOptions resumed;
  resumed.output_dir = dir.path() + "/resumed";
  overrides.back() = "SOLVER.MAX_ITER=2";
  largedet::engine::train(tiny_config(recipe, overrides), resumed);
  resumed.resume = true;
  overrides.back() = "SOLVER.MAX_ITER=4";
  largedet::engine::train(tiny_config(recipe, overrides), resumed);
  auto x = largedet::safetensors::load(straight.output_dir + "/model_final.safetensors").tensors;
  auto y = largedet::safetensors::load(resumed.output_dir + "/model_final.safetensors").tensors;
  ASSERT_EQ(x.size(), y.size());
  for (const auto& [name, tensor] : x) EXPECT_TRUE(tensor.equal(y.at(name))) << name;
  EXPECT_EQ(scalars(straight.output_dir).at(4).at("agvm/rpn/factor"),
            scalars(resumed.output_dir).at(4).at("agvm/rpn/factor"));
}

TEST(AgvmTraining, BatchWithoutTwoHalvesIsRefused) {
  TempDir dir;
  const auto recipe = write_tiny_recipe(dir.path());
  largedet::engine::TrainOptions options;
  options.output_dir = dir.path() + "/run";
  try {
    largedet::engine::train(
        tiny_config(recipe, {"SOLVER.AGVM.ENABLED=true", "SOLVER.IMS_PER_DEVICE=4"}), options);
    FAIL() << "a single forward per step has no two halves";
  } catch (const largedet::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be split in two"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("SOLVER.IMS_PER_DEVICE"), std::string::npos) << e.what();
  }
}

}  // namespace
