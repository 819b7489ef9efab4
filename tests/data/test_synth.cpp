// largedet synth: same seed, same bytes; a valid COCO dataset of four shape classes with polygon
// masks that pycocotools reads too; the harder options (more classes, clutter, scales, hidden
// objects dropped) and defaults that keep the bytes of before.
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

using testing::all_files;
using testing::dataset_files;
using testing::TempDir;

SynthResult make_detection_set(const std::string& dir, uint64_t seed, int images = 10) {
  SynthOptions o;
  o.out_dir = dir;
  o.images = images;
  o.size = 80;
  o.seed = seed;
  return write_synthetic_coco(o);
}

TEST(Synth, SameSeedSameBytesOtherSeedOtherBytes) {
  TempDir a, b, c;
  make_detection_set(a.path(), 3);
  make_detection_set(b.path(), 3);
  make_detection_set(c.path(), 4);
  const auto fa = all_files(a.path());
  EXPECT_EQ(fa.size(), 12u);  // 10 JPEGs and 2 JSON files
  EXPECT_EQ(fa, all_files(b.path()));
  EXPECT_NE(fa, all_files(c.path()));
}

TEST(Synth, WritesAValidSplitCocoDataset) {
  TempDir dir;
  const SynthResult r = make_detection_set(dir.path(), 1, 20);
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
  const SynthResult r = make_detection_set(dir.path(), 2, 6);
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
  make_detection_set(a.path(), 7, 5);
  const std::string cmd =
      cli + " synth --out " + b.path() + " --images 5 --size 80 --seed 7 > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(all_files(a.path()), dataset_files(b.path()));
}

// FNV-1a over every file's relative path and bytes, in name order.
uint64_t dataset_hash(const std::string& root) {
  uint64_t h = 1469598103934665603ull;
  auto add = [&](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xff;
    h *= 1099511628211ull;
  };
  for (const auto& [name, bytes] : all_files(root)) {
    add(name);
    add(bytes);
  }
  return h;
}

TEST(Synth, DefaultsKeepTheBytesOfBeforeTheHarderOptions) {
  // Hashes of datasets written by the generator before --classes, --clutter, --min-scale,
  // --max-scale and --min-visible existed: their defaults must change nothing.
  TempDir a, b;
  SynthOptions o;
  o.out_dir = a.path();
  o.images = 8;
  o.size = 96;
  o.seed = 11;
  write_synthetic_coco(o);
  EXPECT_EQ(dataset_hash(a.path()), 0xeee53e2015a0e13bull);
  SynthOptions p;
  p.out_dir = b.path();
  p.images = 6;
  p.size = 64;
  p.seed = 3;
  p.max_objects = 12;
  p.portrait_fraction = 0.5;
  write_synthetic_coco(p);
  EXPECT_EQ(dataset_hash(b.path()), 0xe955d6ae0f39e128ull);
}

SynthOptions harder(const std::string& dir) {
  SynthOptions o;
  o.out_dir = dir;
  o.images = 30;
  o.size = 96;
  o.seed = 5;
  o.classes = 10;
  o.max_objects = 8;
  return o;
}

Dataset load(const SynthResult& r) {
  CocoDatasetOptions o;
  o.strict = true;
  o.image_root = r.train_dir;
  return load_coco_dataset(r.train_json, o);
}

TEST(Synth, MoreClassesHaveIdsOneToN) {
  TempDir dir;
  const auto r = write_synthetic_coco(harder(dir.path()));
  const Dataset train = load(r);
  EXPECT_EQ(train.class_names,
            (std::vector<std::string>{"circle", "rectangle", "triangle", "hexagon", "star",
                                      "ellipse", "cross", "ring", "L-shape", "arrow"}));
  EXPECT_EQ(train.category_ids, (std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  std::set<int64_t> labels;
  for (const auto& rec : train.records) {
    for (const auto& i : rec.instances) {
      labels.insert(i.label);
      // Every outline lies inside the image and inside its box.
      const auto& xy = i.segmentation.polygons[0];
      for (size_t k = 0; k < xy.size(); k += 2) {
        EXPECT_GE(xy[k], std::max(0.0, i.box[0] - 1e-3));
        EXPECT_LE(xy[k], std::min<double>(rec.width, i.box[2] + 1e-3));
        EXPECT_GE(xy[k + 1], std::max(0.0, i.box[1] - 1e-3));
        EXPECT_LE(xy[k + 1], std::min<double>(rec.height, i.box[3] + 1e-3));
      }
    }
  }
  EXPECT_EQ(labels.size(), 10u);
  EXPECT_EQ(*labels.begin(), 1);
  EXPECT_EQ(*labels.rbegin(), 10);
  SynthOptions bad = harder(dir.path());
  bad.classes = 11;
  EXPECT_ANY_THROW(write_synthetic_coco(bad));
}

TEST(Synth, BoxesRespectTheScaleBounds) {
  for (const bool log_scale : {false, true}) {
    TempDir dir;
    SynthOptions o = harder(dir.path());
    o.min_scale = 0.1;
    o.max_scale = 0.3;
    o.log_scale = log_scale;
    const Dataset train = load(write_synthetic_coco(o));
    double smallest = 1e9, largest = 0;
    for (const auto& rec : train.records) {
      const double m = std::min(rec.width, rec.height);
      for (const auto& i : rec.instances) {
        // The size 2r is in [0.1 m, 0.3 m]; a box's longer side is at least r (the thinnest
        // shape, the ellipse, is 2r x r) and at most 2 x 1.17 r (the rectangle's diagonal).
        const double side = std::max(i.box[2] - i.box[0], i.box[3] - i.box[1]) / m;
        smallest = std::min(smallest, side);
        largest = std::max(largest, side);
      }
    }
    EXPECT_GE(smallest, 0.05 - 0.01) << log_scale;
    EXPECT_LE(largest, 0.3 * 1.17 + 0.01) << log_scale;
    EXPECT_LT(smallest, 0.12) << log_scale;  // the range is used, not only its top
    EXPECT_GT(largest, 0.25) << log_scale;
  }
  TempDir dir;
  SynthOptions bad = harder(dir.path());
  bad.min_scale = 0.4;
  bad.max_scale = 0.3;
  EXPECT_ANY_THROW(write_synthetic_coco(bad));
  bad.min_scale = 0.1;
  bad.max_scale = 0.9;  // would not fit in the image
  EXPECT_ANY_THROW(write_synthetic_coco(bad));
}

std::vector<std::string> annotation_lines(const std::string& json) {
  std::vector<std::string> lines;
  std::istringstream in(read_file(json));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("{\"id\":", 0) != 0 || line.find("\"category_id\"") == std::string::npos)
      continue;
    // Without the annotation id, which counts the kept annotations.
    lines.push_back(line.substr(line.find(",\"image_id\"")));
  }
  return lines;
}

TEST(Synth, ClutterLeavesTheObjectsAndHiddenObjectsAreDropped) {
  TempDir plain, cluttered, occluded;
  SynthOptions o = harder(plain.path());
  o.max_objects = 12;
  const auto r0 = write_synthetic_coco(o);
  o.out_dir = cluttered.path();
  o.clutter = 8;
  const auto r1 = write_synthetic_coco(o);
  // Clutter has its own random stream: the same objects, other pixels.
  EXPECT_EQ(annotation_lines(r0.train_json), annotation_lines(r1.train_json));
  EXPECT_EQ(r0.annotations, r1.annotations);
  EXPECT_NE(read_file(r0.train_dir + "/000001.jpg"), read_file(r1.train_dir + "/000001.jpg"));

  o.out_dir = occluded.path();
  o.min_visible = 0.3;
  const auto r2 = write_synthetic_coco(o);
  // The same pictures; the annotations of mostly hidden objects are gone, the others unchanged.
  EXPECT_EQ(read_file(r1.train_dir + "/000001.jpg"), read_file(r2.train_dir + "/000001.jpg"));
  EXPECT_GT(r2.dropped_occluded, 0);
  EXPECT_EQ(r2.annotations + r2.dropped_occluded, r1.annotations);
  const auto all = annotation_lines(r1.train_json), kept = annotation_lines(r2.train_json);
  size_t k = 0;
  for (const auto& line : all) k += k < kept.size() && kept[k] == line;
  EXPECT_EQ(k, kept.size()) << "the kept annotations are a subsequence of all";
  EXPECT_LT(kept.size(), all.size());
  EXPECT_NO_THROW(load(r2));  // strict: nothing wrong in what is left
}

TEST(Synth, PycocotoolsReadsTheNewShapes) {
  const std::string python = LARGEDET_PYTHON;
  if (python.empty() || !std::filesystem::exists(python)) GTEST_SKIP() << "no LARGEDET_PYTHON";
  TempDir dir;
  SynthOptions o = harder(dir.path());
  o.images = 12;
  const SynthResult r = write_synthetic_coco(o);
  const std::string script = dir.file("check.py");
  // The ring is one outline with a zero-width slit: its mask must have the hole.
  testing::write_text(
      script,
      "import sys\n"
      "from pycocotools.coco import COCO\n"
      "c = COCO(sys.argv[1])\n"
      "seen = set()\n"
      "for a in c.loadAnns(c.getAnnIds()):\n"
      "    m = c.annToMask(a)\n"
      "    seen.add(a['category_id'])\n"
      "    assert m.sum() > 0 and abs(m.sum() - a['area']) < 0.2 * a['area'] + 10, a\n"
      "assert 8 in seen, seen\n"
      "print('ok', len(c.getAnnIds()))\n");
  const std::string cmd =
      python + " " + script + " " + r.train_json + " > " + dir.file("out.txt") + " 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << read_file(dir.file("out.txt"));
}

TEST(Synth, CommandLineTakesTheHarderOptions) {
  const std::string cli = LARGEDET_CLI;
  if (!std::filesystem::exists(cli)) GTEST_SKIP() << "largedet CLI not built: " << cli;
  TempDir a, b;
  SynthOptions o = harder(a.path());
  o.images = 5;
  o.clutter = 3;
  o.min_scale = 0.06;
  o.max_scale = 0.6;
  o.min_visible = 0.3;
  write_synthetic_coco(o);
  const std::string cmd = cli + " synth --out " + b.path() +
                          " --images 5 --size 96 --seed 5 --classes 10 --max-objects 8 "
                          "--clutter 3 --min-scale 0.06 --max-scale 0.6 --occlusion > /dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_EQ(all_files(a.path()), dataset_files(b.path()));
}

TEST(Synth, RejectsBadOptions) {
  SynthOptions o;
  o.out_dir = "/tmp/unused";
  o.images = 0;
  EXPECT_ANY_THROW(write_synthetic_coco(o));
}

}  // namespace
}  // namespace largedet::data
