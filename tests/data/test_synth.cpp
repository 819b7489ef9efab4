// largedet synth: same seed, same bytes; a valid COCO dataset of four shape classes with polygon
// masks that pycocotools reads too.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "data_test_util.h"
#include "largedet/core/file_io.h"
#include "largedet/data/coco_dataset.h"
#include "largedet/data/synthetic.h"

namespace largedet::data {
namespace {

using testing::TempDir;

std::map<std::string, std::string> all_files(const std::string& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) {
      files[std::filesystem::relative(e.path(), root).string()] = read_file(e.path().string());
    }
  }
  return files;
}

SynthResult make(const std::string& dir, uint64_t seed, int images = 10) {
  SynthOptions o;
  o.out_dir = dir;
  o.images = images;
  o.size = 80;
  o.seed = seed;
  return write_synthetic_coco(o);
}

TEST(Synth, SameSeedSameBytesOtherSeedOtherBytes) {
  TempDir a, b, c;
  make(a.path(), 3);
  make(b.path(), 3);
  make(c.path(), 4);
  const auto fa = all_files(a.path());
  EXPECT_EQ(fa.size(), 12u);  // 10 JPEGs and 2 JSON files
  EXPECT_EQ(fa, all_files(b.path()));
  EXPECT_NE(fa, all_files(c.path()));
}

TEST(Synth, WritesAValidSplitCocoDataset) {
  TempDir dir;
  const SynthResult r = make(dir.path(), 1, 20);
  EXPECT_EQ(r.train_images, 16);
  EXPECT_EQ(r.val_images, 4);
  CocoDatasetOptions o;
  o.strict = true;  // no bad input at all
  o.image_root = r.train_dir;
  const Dataset train = load_coco_dataset(r.train_json, o);
  o.image_root = r.val_dir;
  const Dataset val = load_coco_dataset(r.val_json, o);
  EXPECT_EQ(train.size(), 16u);
  EXPECT_EQ(val.size(), 4u);
  EXPECT_EQ(train.class_names,
            (std::vector<std::string>{"circle", "rectangle", "triangle", "hexagon"}));
  std::set<int64_t> labels;
  for (const auto& rec : train.records) {
    EXPECT_TRUE(std::filesystem::exists(rec.path)) << rec.path;
    EXPECT_TRUE((rec.width == 80 && rec.height == 60) || (rec.width == 60 && rec.height == 80));
    for (const auto& i : rec.instances) {
      labels.insert(i.label);
      ASSERT_EQ(i.segmentation.kind, evaluation::Segmentation::Kind::kPolygons);
      const auto& xy = i.segmentation.polygons[0];
      for (size_t k = 0; k < xy.size(); k += 2) {
        EXPECT_GE(xy[k], i.box[0] - 1e-3);
        EXPECT_LE(xy[k], i.box[2] + 1e-3);
        EXPECT_GE(xy[k + 1], i.box[1] - 1e-3);
        EXPECT_LE(xy[k + 1], i.box[3] + 1e-3);
      }
    }
  }
  EXPECT_EQ(labels.size(), 4u);
}

TEST(Synth, PycocotoolsReadsTheAnnotations) {
  const std::string python = LARGEDET_PYTHON;
  if (python.empty() || !std::filesystem::exists(python)) GTEST_SKIP() << "no LARGEDET_PYTHON";
  TempDir dir;
  const SynthResult r = make(dir.path(), 2, 6);
  const std::string script = dir.file("check.py");
  testing::write_text(
      script,
      "import sys\n"
      "from pycocotools.coco import COCO\n"
      "c = COCO(sys.argv[1])\n"
      "for a in c.loadAnns(c.getAnnIds()):\n"
      "    m = c.annToMask(a)\n"
      "    assert m.sum() > 0 and abs(m.sum() - a['area']) < 0.2 * a['area'] + 10, a\n"
      "print('ok', len(c.getAnnIds()))\n");
  const std::string cmd =
      python + " " + script + " " + r.train_json + " > " + dir.file("out.txt") + " 2>&1";
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << read_file(dir.file("out.txt"));
}

TEST(Synth, CommandLineWritesTheSameBytes) {
  const std::string cli = LARGEDET_CLI;
  if (!std::filesystem::exists(cli)) GTEST_SKIP() << "largedet CLI not built: " << cli;
  TempDir a, b;
  make(a.path(), 7, 5);
  const std::string cmd =
      cli + " synth --out " + b.path() + " --images 5 --size 80 --seed 7 > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(all_files(a.path()), all_files(b.path()));
}

TEST(Synth, RejectsBadOptions) {
  SynthOptions o;
  o.out_dir = "/tmp/unused";
  o.images = 0;
  EXPECT_ANY_THROW(write_synthetic_coco(o));
}

}  // namespace
}  // namespace largedet::data
