// Issue 33's scale check: a LargeDet job runs 64-160 ranks, every other multi-process test 2 or 3.
// The tests' tiny recipe trains at 16 and 32 ranks on this machine under `largedet launch` (Gloo
// over loopback, one intra-op thread per rank) and ends where one process ends at the same global
// batch; the 32-rank evaluation scores every test image once. Label scale: `make test-scale`
// (docs/distributed.md, "Scale on one machine").
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "largedet/evaluation/coco_json.h"
#include "largedet/evaluation/results.h"
#include "largedet/tensor/safetensors.h"
#include "train_fixture.h"

namespace {

using largedet::test::quote;
using largedet::test::run_shell;
using largedet::test::TempDir;
using largedet::test::write_tiny_recipe;

// One image per forward, no random flip or scale, norms that do not mix images: every layout of
// the 32-image global batch (1 rank x 32 forwards, 16 x 2, 32 x 1) sums the same 32 gradients.
const std::vector<std::string> kSameBatch = {
    "SOLVER.IMS_PER_BATCH=32",    "SOLVER.IMS_PER_DEVICE=1",  "SOLVER.MAX_ITER=2",
    "SOLVER.CHECKPOINT_PERIOD=1", "TEST.EVAL_PERIOD=0",       "MODEL.RESNETS.NORM=FrozenBN",
    "INPUT.RANDOM_FLIP=none",     "INPUT.MIN_SIZE_TRAIN=[72]"};

// `command` as it runs on `ranks` ranks: itself for one, under `largedet launch` otherwise.
std::string on_ranks(int ranks, const std::string& command) {
  if (ranks == 1) return command;
  return quote(LARGEDET_CLI) + " launch --nproc-per-node " + std::to_string(ranks) +
         " --master-port 0 -- " + command;
}

std::string train(const std::string& recipe, const std::string& out, int ranks) {
  std::string command =
      quote(LARGEDET_CLI) + " train --config " + quote(recipe) + " --output " + quote(out);
  for (const auto& o : kSameBatch) command += " " + quote(o);
  return on_ranks(ranks, command);
}

// The largest |a - b| over the model's tensors (a checkpoint's state blobs aside), relative to
// that tensor's largest |b|.
double worst_relative_difference(const std::string& a_path, const std::string& b_path) {
  const auto a = largedet::safetensors::load(a_path).tensors;
  const auto b = largedet::safetensors::load(b_path).tensors;
  double worst = 0;
  size_t compared = 0;
  for (const auto& [name, tensor] : b) {
    if (!a.count(name) || !tensor.is_floating_point() || tensor.numel() == 0) continue;
    const double scale = std::max(tensor.abs().max().item<double>(), 1e-12);
    worst = std::max(worst, (a.at(name) - tensor).abs().max().item<double>() / scale);
    ++compared;
  }
  EXPECT_GT(compared, 100u) << a_path << " and " << b_path << " share few tensors";
  return worst;
}

TEST(Scale, TrainingAt16And32RanksEndsWhereOneProcessDoes) {
  TempDir dir;
  // 85 images: 64 to train on (the rest is the test split), two global batches of 32 within one
  // epoch, which no world size here pads (a padded epoch would change the second batch).
  const auto recipe = write_tiny_recipe(dir.path(), 85);
  const std::string one = dir.path() + "/one";
  auto single = run_shell(train(recipe, one, 1));
  ASSERT_EQ(single.code, 0) << single.output;
  EXPECT_NE(single.output.find("1 rank(s) x 32 micro-batch(es) x 1"), std::string::npos)
      << single.output;
  // The second step moved the weights far more than the tolerance below: equal final weights then
  // say that the layouts trained alike.
  EXPECT_GT(worst_relative_difference(one + "/model_final.safetensors",
                                      one + "/model_0000001.safetensors"),
            1e-3);
  for (int ranks : {16, 32}) {
    const std::string out = dir.path() + "/ranks" + std::to_string(ranks);
    auto many = run_shell(train(recipe, out, ranks));
    ASSERT_EQ(many.code, 0) << many.output;
    EXPECT_NE(many.output.find(std::to_string(ranks) + " rank(s) x " + std::to_string(32 / ranks) +
                               " micro-batch(es) x 1"),
              std::string::npos)
        << many.output;
    const auto connected = many.output.find(std::to_string(ranks) + " ranks connected in ");
    EXPECT_NE(connected, std::string::npos) << many.output;
    if (connected != std::string::npos)
      std::cout << many.output.substr(connected, many.output.find('\n', connected) - connected)
                << "\n";
    // Gradients summed in another order: float32 rounding, far below one step's change.
    const double difference = worst_relative_difference(out + "/model_final.safetensors",
                                                        one + "/model_final.safetensors");
    std::cout << ranks << " ranks: final weights within " << difference
              << " (relative) of one process\n";
    EXPECT_LT(difference, 1e-4);
  }

  // Evaluated on 32 ranks: every test image's detections exactly once, as one process has them.
  const std::string weights = one + "/model_final.safetensors";
  auto evaluate = [&](int ranks, const std::string& detections) {
    return run_shell(on_ranks(ranks, quote(LARGEDET_CLI) + " evaluate --config " + quote(recipe) +
                                         " --weights " + quote(weights) + " --detections " +
                                         quote(detections) +
                                         " INPUT.MIN_SIZE_TRAIN=[72] MODEL.RESNETS.NORM=FrozenBN"));
  };
  auto by_one = evaluate(1, dir.path() + "/one.json");
  ASSERT_EQ(by_one.code, 0) << by_one.output;
  auto by_32 = evaluate(32, dir.path() + "/32.json");
  ASSERT_EQ(by_32.code, 0) << by_32.output;
  const auto gt =
      largedet::evaluation::load_coco_json(dir.path() + "/data/annotations/instances_val.json");
  EXPECT_NE(by_32.output.find("inference on " + std::to_string(gt.images.size()) +
                              " test images over 32 rank(s)"),
            std::string::npos)
      << by_32.output;
  const auto a = largedet::evaluation::load_coco_results(dir.path() + "/one.json", gt);
  const auto b = largedet::evaluation::load_coco_results(dir.path() + "/32.json", gt);
  ASSERT_EQ(a.size(), b.size());
  std::multiset<int64_t> images_a, images_b;
  for (const auto& d : a) images_a.insert(d.image_id);
  for (const auto& d : b) images_b.insert(d.image_id);
  EXPECT_EQ(images_a, images_b);
}

}  // namespace
