// largedet synth --task classify: an ImageFolder of glyph x pattern classes, same seed same bytes;
// and the ImageFolder listing that `largedet pretrain` reads, with its errors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "common/error_text.h"
#include "data_test_util.h"
#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/core/run_lock.h"
#include "largedet/data/image.h"
#include "largedet/data/image_folder.h"
#include "largedet/data/synthetic_classify.h"

namespace largedet::data {
namespace {

using largedet::test::error_of;

using testing::all_files;
using testing::dataset_files;
using testing::TempDir;
namespace fs = std::filesystem;

SynthClassifyResult make_classification_set(const std::string& dir, uint64_t seed, int classes = 4,
                                            int images = 40) {
  SynthClassifyOptions o;
  o.out_dir = dir;
  o.images = images;
  o.size = 32;
  o.classes = classes;
  o.seed = seed;
  return write_synthetic_classification(o);
}

TEST(SynthClassify, WritesABalancedImageFolder) {
  TempDir dir;
  const auto r = make_classification_set(dir.path(), 1);
  // 20 % of 40 is 2 per class in val, the remaining 32 are 8 per class in train.
  EXPECT_EQ(r.train_images, 32);
  EXPECT_EQ(r.val_images, 8);
  EXPECT_EQ(r.classes, (std::vector<std::string>{"crescent_checks", "crescent_dots",
                                                 "crescent_rings", "crescent_stripes"}));
  for (const auto& [split, per_class] : {std::pair<std::string, size_t>{"train", 8}, {"val", 2}}) {
    const auto folder = scan_image_folder(dir.path() + "/" + split);
    EXPECT_EQ(folder.classes, r.classes);
    ASSERT_EQ(folder.samples.size(), per_class * 4);
    std::map<int64_t, size_t> counts;
    for (const auto& s : folder.samples) {
      ++counts[s.label];
      EXPECT_EQ(fs::path(s.path).parent_path().filename().string(),
                folder.classes[static_cast<size_t>(s.label)]);
      const std::string bytes = read_file(s.path);
      int w = 0, h = 0;
      read_image_size(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), &w, &h);
      EXPECT_EQ(w, 32);
      EXPECT_EQ(h, 32);
    }
    for (const auto& [label, n] : counts) EXPECT_EQ(n, per_class) << split << " class " << label;
  }
}

TEST(SynthClassify, SameSeedSameBytesOtherSeedOtherBytes) {
  TempDir a, b, c;
  make_classification_set(a.path(), 3);
  make_classification_set(b.path(), 3);
  make_classification_set(c.path(), 4);
  const auto fa = all_files(a.path());
  EXPECT_EQ(fa.size(), 40u);
  EXPECT_EQ(fa, all_files(b.path()));
  const auto fc = all_files(c.path());
  ASSERT_EQ(fc.size(), fa.size());
  int differ = 0;
  for (const auto& [name, bytes] : fa) differ += fc.at(name) != bytes;
  EXPECT_EQ(differ, 40);  // every image changes with the seed
}

TEST(SynthClassify, SixteenDistinctClassesByDefault) {
  SynthClassifyOptions defaults;
  EXPECT_EQ(defaults.classes, 16);
  std::set<std::string> names;
  for (int c = 0; c < kSynthClassifyMaxClasses; ++c) names.insert(synthetic_classify_class_name(c));
  EXPECT_EQ(names.size(), 16u);
  TempDir dir;
  const auto r = make_classification_set(dir.path(), 5, 16,
                                         64);  // 16 in val (1 per class), 48 in train (3 each)
  EXPECT_EQ(r.classes.size(), 16u);
  EXPECT_EQ(std::set<std::string>(r.classes.begin(), r.classes.end()), names);
  EXPECT_EQ(r.train_images, 48);
  EXPECT_EQ(r.val_images, 16);
  EXPECT_EQ(scan_image_folder(r.train_dir).classes.size(), 16u);
}

TEST(SynthClassify, RejectsBadOptions) {
  TempDir dir;
  EXPECT_NE(error_of([&] { make_classification_set(dir.path(), 0, 1); }).find("--classes"),
            std::string::npos);
  EXPECT_NE(error_of([&] { make_classification_set(dir.path(), 0, 17); }).find("--classes"),
            std::string::npos);
  EXPECT_NE(
      error_of([&] { make_classification_set(dir.path(), 0, 4, 6); }).find("use at least 8 images"),
      std::string::npos);
}

TEST(ImageFolder, ErrorsSayWhatToDo) {
  TempDir dir;
  const std::string root = dir.path() + "/train";
  EXPECT_NE(error_of([&] { scan_image_folder(root); }).find("largedet synth --task classify"),
            std::string::npos);
  fs::create_directories(root);
  EXPECT_NE(error_of([&] { scan_image_folder(root); }).find("holds no class folders"),
            std::string::npos);
  fs::create_directories(root + "/cat");
  testing::write_text(root + "/cat/notes.txt", "not an image");
  EXPECT_NE(error_of([&] { scan_image_folder(root); }).find("add its images or remove the folder"),
            std::string::npos);
  testing::write_text(root + "/cat/b.JPG", "x");
  testing::write_text(root + "/cat/a.png", "x");
  fs::create_directories(root + "/ant");
  testing::write_text(root + "/ant/z.jpeg", "x");
  fs::create_directories(root + "/.hidden");
  const auto folder = scan_image_folder(root);
  EXPECT_EQ(folder.classes, (std::vector<std::string>{"ant", "cat"}));
  ASSERT_EQ(folder.samples.size(), 3u);
  EXPECT_EQ(folder.samples[0].label, 0);
  EXPECT_EQ(fs::path(folder.samples[1].path).filename(), "a.png");
  EXPECT_EQ(folder.samples[2].label, 1);
}

TEST(SynthClassify, CommandLineWritesTheSameBytes) {
  const std::string cli = LARGEDET_CLI;
  if (!fs::exists(cli)) GTEST_SKIP() << "largedet CLI not built: " << cli;
  TempDir a, b;
  make_classification_set(a.path(), 7);
  const std::string cmd = cli + " synth --task classify --out " + b.path() +
                          " --images 40 --size 32 --classes 4 --seed 7 > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(all_files(a.path()), dataset_files(b.path()));
  // A detection-only option is refused rather than ignored.
  const std::string bad = cli + " synth --task classify --out " + b.path() +
                          " --images 40 --max-objects 3 > /dev/null 2>&1";
  EXPECT_NE(std::system(bad.c_str()), 0);
}

// A rerun into its own directory replaces the set (a smaller one inherits no file of the larger:
// pretrain would train on them); a directory synth did not write, or one another run holds, is
// refused and left as it was.
TEST(SynthClassify, ARerunReplacesItsSetAndNeverTouchesAnotherDirectory) {
  const std::string cli = LARGEDET_CLI;
  if (!fs::exists(cli)) GTEST_SKIP() << "largedet CLI not built: " << cli;
  TempDir a, b, c;
  auto synth = [&](const std::string& out, int images) {
    const std::string cmd = cli + " synth --task classify --out " + out + " --images " +
                            std::to_string(images) + " --size 32 --classes 2 --seed 7 > " +
                            c.path() + "/said.txt 2>&1";
    return std::system(cmd.c_str());
  };
  auto said = [&] { return testing::read_text(c.path() + "/said.txt"); };
  ASSERT_EQ(synth(b.path(), 20), 0) << said();
  ASSERT_EQ(synth(b.path(), 6), 0) << said();
  make_classification_set(a.path(), 7, 2, 6);
  EXPECT_EQ(all_files(a.path()), dataset_files(b.path()));
  EXPECT_NE(testing::read_text(b.path() + "/synth.json").find("\"complete\": true"),
            std::string::npos);

  testing::write_text(a.path() + "/keep.txt", "mine");
  const auto before = all_files(a.path());
  EXPECT_NE(synth(a.path(), 6), 0);
  EXPECT_NE(said().find("is not empty (it holds keep.txt) and was not written by largedet synth"),
            std::string::npos)
      << said();
  EXPECT_EQ(all_files(a.path()), before);

  const auto set = dataset_files(b.path());
  {
    const RunLock other(b.path(), "synth");
    EXPECT_NE(synth(b.path(), 20), 0);
    EXPECT_NE(said().find("another run is using this directory: synth, PID"), std::string::npos)
        << said();
  }
  EXPECT_EQ(dataset_files(b.path()), set);
  EXPECT_NE(testing::read_text(b.path() + "/synth.json").find("\"complete\": true"),
            std::string::npos);
}

}  // namespace
}  // namespace largedet::data
