// largedet pretrain: the detector's ResNet body trained as a classifier on a synthetic ImageFolder;
// its backbone.safetensors loads into the detector of the same recipe, it learns, it resumes, and
// bad input is refused with errors that say what to do.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

#include "common/error_text.h"
#include "largedet/core/error.h"
#include "largedet/core/run_lock.h"
#include "largedet/data/image.h"
#include "largedet/data/seed.h"
#include "largedet/data/synthetic_classify.h"
#include "largedet/engine/pretrain.h"
#include "largedet/modeling/build.h"
#include "largedet/modeling/weights.h"
#include "largedet/tensor/safetensors.h"
#include "train_fixture.h"

namespace largedet::engine {
namespace {

using largedet::test::error_of;

namespace fs = std::filesystem;
using test::TempDir;

// 4 texture classes at 32 px: 8 training and 2 validation images each (or `images` in all).
std::string write_classes(const std::string& dir, int images = 40, int classes = 4) {
  data::SynthClassifyOptions o;
  o.out_dir = dir + "/cls";
  o.images = images;
  o.size = 32;
  o.classes = classes;
  o.seed = 3;
  data::write_synthetic_classification(o);
  return o.out_dir;
}

PretrainOptions quick(const std::string& data, const std::string& output) {
  PretrainOptions o;
  o.data_dir = data;
  o.output_dir = output;
  o.epochs = 2;
  o.batch = 8;
  o.lr = 0.05;
  o.log_period = 0;
  return o;
}

TEST(Pretrain, WritesOnlyTheBodyWhichLoadsIntoTheDetector) {
  TempDir dir;
  const auto recipe = test::write_tiny_recipe(dir.path(), 4);  // ResNet-18 at 1/8 width, SyncBN
  const auto config = test::tiny_config(recipe);
  const auto data = write_classes(dir.path());
  const auto r = pretrain(config, quick(data, dir.path() + "/pt"));
  EXPECT_TRUE(r.finished);
  EXPECT_EQ(r.epochs_run, 2);
  EXPECT_EQ(r.train_images, 32);
  EXPECT_EQ(r.val_images, 8);
  EXPECT_EQ(r.skipped_images, 0);
  EXPECT_GE(r.val_top1, 0.0);
  ASSERT_EQ(r.weights_path, dir.path() + "/pt/backbone.safetensors");
  EXPECT_FALSE(fs::exists(dir.path() + "/pt/pretrain_checkpoint.safetensors"));

  const auto file = safetensors::load(r.weights_path);
  ASSERT_FALSE(file.tensors.empty());
  for (const auto& [name, t] : file.tensors) EXPECT_EQ(name.rfind("backbone.body.", 0), 0u) << name;
  EXPECT_TRUE(file.tensors.count("backbone.body.conv1.weight"));
  EXPECT_TRUE(file.tensors.count("backbone.body.layer4.1.bn2.running_var"));

  // The detector of the same recipe (SyncBN) and of its FrozenBN variant: every body tensor
  // loads, nothing is unexpected or of another shape, only the FPN and heads are missing.
  for (const std::string norm : {"SyncBN", "FrozenBN"}) {
    const auto c = test::tiny_config(recipe, {"MODEL.RESNETS.NORM=" + norm});
    auto detector = modeling::build_detector(c);
    const auto report = modeling::load_weights(*detector, r.weights_path);
    EXPECT_TRUE(report.unexpected.empty()) << norm << ": " << report.str();
    EXPECT_TRUE(report.mismatched.empty()) << norm << ": " << report.str();
    ASSERT_FALSE(report.missing.empty());
    for (const auto& name : report.missing)
      EXPECT_NE(name.rfind("backbone.body.", 0), 0u) << norm << ": " << name;
    const auto own = modeling::state_dict(*detector);
    const auto& mean = own.at("backbone.body.bn1.running_mean");
    EXPECT_TRUE(mean.equal(file.tensors.at("backbone.body.bn1.running_mean"))) << norm;
    EXPECT_GT(mean.abs().sum().item<double>(), 0) << norm << ": running statistics were learnt";
  }

  // One metrics line per epoch, with the validation accuracy.
  std::ifstream metrics(dir.path() + "/pt/metrics.jsonl");
  int epochs = 0;
  for (std::string line; std::getline(metrics, line);)
    epochs += line.find("\"val_top1\"") != std::string::npos;
  EXPECT_EQ(epochs, 2);
}

TEST(Pretrain, BatchNormWhereTheRecipeFreezesOrSynchronisesIt) {
  TempDir dir;
  const auto recipe = test::write_tiny_recipe(dir.path(), 4);
  std::string why;
  auto o = pretrain_resnet_options(
      test::tiny_config(recipe, {"MODEL.RESNETS.NORM=FrozenBN", "MODEL.BACKBONE.FREEZE_AT=2"}),
      &why);
  EXPECT_EQ(o.norm, "BN");
  EXPECT_EQ(o.freeze_at, 0);
  EXPECT_NE(why.find("FrozenBN"), std::string::npos) << why;
  EXPECT_EQ(pretrain_resnet_options(test::tiny_config(recipe)).norm, "BN");  // SyncBN
  EXPECT_EQ(o.depth, 18);
  EXPECT_EQ(o.stem_out_channels, 8);
  EXPECT_EQ(o.width_per_group, 8);
}

// An easy set that only a working pipeline learns: 4 classes told apart by the colour of a square
// at a random place on grey noise, 16 training and 4 validation images each, at 32 px. Held-out
// accuracy far above chance needs labels, normalisation, training and evaluation all right.
std::string write_colour_squares(const std::string& dir) {
  const uint8_t colours[4][3] = {{220, 40, 40}, {40, 200, 40}, {40, 40, 220}, {230, 220, 40}};
  const char* names[4] = {"red", "green", "blue", "yellow"};  // labels follow the sorted names
  uint64_t state = 7;
  auto next = [&](int n) { return static_cast<int>((state = data::mix_seed(state, 1)) % n); };
  for (const std::string split : {"train", "val"}) {
    for (int c = 0; c < 4; ++c) {
      const std::string folder = dir + "/easy/" + split + "/" + names[c];
      fs::create_directories(folder);
      for (int i = 0; i < (split == "train" ? 16 : 4); ++i) {
        data::Image image;
        image.width = image.height = 32;
        image.rgb.resize(32 * 32 * 3);
        for (auto& v : image.rgb) v = static_cast<uint8_t>(60 + next(130));
        const int side = 10 + next(11), x0 = next(32 - side), y0 = next(32 - side);
        for (int y = y0; y < y0 + side; ++y)
          for (int x = x0; x < x0 + side; ++x)
            for (int k = 0; k < 3; ++k)
              image.rgb[(y * 32 + x) * 3 + k] =
                  static_cast<uint8_t>(std::clamp(colours[c][k] + next(41) - 20, 0, 255));
        std::ofstream(folder + "/" + std::to_string(i) + ".png", std::ios::binary)
            << data::encode_png(image.rgb, 32, 32);
      }
    }
  }
  return dir + "/easy";
}

TEST(Pretrain, LearnsAnEasySet) {
  TempDir dir;
  const auto recipe = test::write_tiny_recipe(dir.path(), 4);
  auto o = quick(write_colour_squares(dir.path()), dir.path() + "/pt");
  o.epochs = 12;
  o.batch = 16;
  o.lr = 0.05;
  const auto r = pretrain(test::tiny_config(recipe), o);
  EXPECT_EQ(r.train_images, 64);
  EXPECT_EQ(r.val_images, 16);
  EXPECT_GT(r.train_accuracy, 0.7);  // chance: 0.25
  EXPECT_GE(r.val_top1, 0.75);
  EXPECT_LT(r.train_loss, 1.0);  // ln 4 = 1.39 at chance
}

TEST(Pretrain, ResumesToTheSameWeights) {
  TempDir dir;
  const auto recipe = test::write_tiny_recipe(dir.path(), 4);
  const auto config = test::tiny_config(recipe);
  const auto data = write_classes(dir.path());
  auto o = quick(data, dir.path() + "/whole");
  o.epochs = 3;
  pretrain(config, o);
  o.output_dir = dir.path() + "/sliced";
  o.stop_after = 1;
  const auto first = pretrain(config, o);
  EXPECT_FALSE(first.finished);
  EXPECT_TRUE(fs::exists(o.output_dir + "/pretrain_checkpoint.safetensors"));
  EXPECT_FALSE(fs::exists(o.output_dir + "/backbone.safetensors"));
  // Without --resume an unfinished run is not silently thrown away.
  o.stop_after = 0;
  EXPECT_NE(error_of([&] { pretrain(config, o); }).find("--resume"), std::string::npos);
  o.resume = true;
  const auto rest = pretrain(config, o);
  EXPECT_TRUE(rest.finished);
  EXPECT_EQ(rest.epochs_run, 2);
  const auto a = safetensors::load(dir.path() + "/whole/backbone.safetensors").tensors;
  const auto b = safetensors::load(o.output_dir + "/backbone.safetensors").tensors;
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, t] : a) EXPECT_TRUE(t.equal(b.at(name))) << name;
}

TEST(Pretrain, BadInputIsRefusedWithWhatToDo) {
  TempDir dir;
  const auto recipe = test::write_tiny_recipe(dir.path(), 4);
  const auto config = test::tiny_config(recipe);
  const auto data = write_classes(dir.path());
  const std::string out = dir.path() + "/pt";
  auto expect_error = [&](const PretrainOptions& o, const std::string& text) {
    const auto message = error_of([&] { pretrain(config, o); });
    EXPECT_NE(message.find(text), std::string::npos)
        << "expected \"" << text << "\" in \"" << message << "\"";
  };
  auto o = quick(data, out);
  o.epochs = 0;
  expect_error(o, "give a positive number of epochs");
  o = quick(data, out);
  o.batch = 0;
  expect_error(o, "give a batch of at least 2");
  o = quick(data, out);
  o.lr = -0.1;
  expect_error(o, "give a positive learning rate");
  expect_error(quick(dir.path() + "/missing", out), "largedet synth --task classify");
  fs::create_directories(dir.path() + "/empty");
  expect_error(quick(dir.path() + "/empty", out), "has no train/ folder");
  fs::create_directories(dir.path() + "/empty/train");
  expect_error(quick(dir.path() + "/empty", out), "holds no class folders");
  fs::create_directories(dir.path() + "/empty/train/a");
  expect_error(quick(dir.path() + "/empty", out), "add its images or remove the folder");
  EXPECT_FALSE(fs::exists(out + "/backbone.safetensors"));

  // An unreadable image is skipped and counted; the run goes on.
  std::ofstream(data + "/train/crescent_dots/broken.jpg") << "not a JPEG";
  o = quick(data, out);
  o.epochs = 1;
  const auto r = pretrain(config, o);
  EXPECT_EQ(r.skipped_images, 1);
  EXPECT_EQ(r.train_images, 32);
  // A finished pretraining is not overwritten unless asked.
  expect_error(o, "pass --force");
  o.force = true;
  {
    // Nor by --force while another run holds the directory: it is refused before anything in it
    // is touched.
    const RunLock other(out, "pretrain");
    const auto before = fs::last_write_time(out + "/backbone.safetensors");
    expect_error(o, "another run is using this directory: pretrain, PID ");
    EXPECT_EQ(fs::last_write_time(out + "/backbone.safetensors"), before);
    EXPECT_TRUE(fs::exists(out + "/metrics.jsonl"));
  }
  EXPECT_TRUE(pretrain(config, o).finished);
  // A class whose images are all unreadable cannot be learnt.
  fs::create_directories(data + "/train/zebra_plain");
  std::ofstream(data + "/train/zebra_plain/x.png") << "not a PNG";
  fs::create_directories(data + "/val/zebra_plain");
  std::ofstream(data + "/val/zebra_plain/y.png") << "not a PNG";
  expect_error(o, "no image of class zebra_plain could be read");
}

}  // namespace
}  // namespace largedet::engine
