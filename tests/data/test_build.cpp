// Loaders from the configuration: batch size, resume at an iteration, evaluation shards.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <numeric>
#include <set>

#include "data_test_util.h"
#include "largedet/core/error.h"
#include "largedet/data/build.h"
#include "largedet/data/samplers.h"
#include "largedet/data/synthetic.h"

namespace largedet::data {
namespace {

struct Fixture {
  testing::TempDir dir;
  SynthResult files;
  Config config = Config::defaults();
  Fixture() {
    SynthOptions o;
    o.out_dir = dir.path();
    o.images = 14;
    o.size = 64;
    o.seed = 2;
    files = write_synthetic_coco(o);
    config.set("DATASETS.TRAIN_ANNOTATIONS", files.train_json);
    config.set("DATASETS.TRAIN_IMAGES", files.train_dir);
    config.set("DATASETS.TEST_ANNOTATIONS", files.val_json);
    config.set("DATASETS.TEST_IMAGES", files.val_dir);
    config.set("INPUT.MIN_SIZE_TRAIN", "[48, 64]");
    config.set("INPUT.MAX_SIZE_TRAIN", "100");
    config.set("INPUT.MIN_SIZE_TEST", "64");
    config.set("SOLVER.IMS_PER_DEVICE", "2");
    config.set("MODEL.MASK_ON", "true");
  }
};

// Resuming at an iteration delivers what the uninterrupted run would have, with the plain
// sampler and with repeat factors, with and without a random crop.
TEST(Build, TrainLoaderResumesAtAnIteration) {
  Fixture f;
  const auto dataset = build_dataset(f.config, true);
  EXPECT_EQ(dataset->size(), 11u);
  EXPECT_EQ(dataset->num_classes(), 4);
  for (const bool repeat : {false, true}) {
    f.config.set("DATALOADER.SAMPLER_TRAIN",
                 repeat ? "RepeatFactorTrainingSampler" : "TrainingSampler");
    f.config.set("DATALOADER.REPEAT_THRESHOLD", "0.9");
    f.config.set("INPUT.CROP.ENABLED", repeat ? "true" : "false");
    auto fresh = build_train_loader(f.config, dataset, 0, 1);
    std::vector<Batch> batches;
    for (int k = 0; k < 14; ++k) batches.push_back(*fresh->next());
    for (const auto& b : batches) {
      EXPECT_EQ(b.size(), 2);
      EXPECT_TRUE(b.targets[0].mask_edges.defined());
    }
    auto resumed = build_train_loader(f.config, dataset, 0, 1, 9);
    for (int k = 9; k < 14; ++k) {
      const Batch b = *resumed->next();
      EXPECT_EQ(b.image_ids, batches[k].image_ids) << repeat;
      EXPECT_TRUE(at::equal(b.images, batches[k].images)) << k << " " << repeat;
      EXPECT_TRUE(at::equal(b.targets[0].boxes, batches[k].targets[0].boxes)) << k;
    }
  }
}

// DATALOADER.SAMPLER_TRAIN RepeatFactorTrainingSampler: the images of rare categories come more
// often. Relabelled so that category 2 is only in the first image (1 in 11, threshold 0.5: a
// factor of sqrt(5.5) = 2.35) and category 1 in every image.
TEST(Build, RepeatFactorSamplerRepeatsImagesOfRareCategories) {
  Fixture f;
  const auto dataset = build_dataset(f.config, true);
  for (auto& record : dataset->records) {
    ASSERT_FALSE(record.instances.empty());
    for (auto& instance : record.instances) instance.label = 1;
  }
  dataset->records[0].instances[0].label = 2;
  f.config.set("DATALOADER.SAMPLER_TRAIN", "RepeatFactorTrainingSampler");
  f.config.set("DATALOADER.REPEAT_THRESHOLD", "0.5");
  const auto factors = repeat_factors_from_category_frequency(*dataset, 0.5);
  EXPECT_DOUBLE_EQ(factors[0], std::sqrt(5.5));
  const double images = std::accumulate(factors.begin(), factors.end(), 0.0);
  ASSERT_GT(images, dataset->size() + 1.0);
  // Over ~20 repeated epochs each image comes in proportion to its factor: the first ~47 times,
  // the others ~20 (a plain sampler: all ~22).
  auto loader = build_train_loader(f.config, dataset, 0, 1);
  std::map<int64_t, int> seen;
  int delivered = 0;
  while (delivered < 20 * images) {
    const Batch batch = *loader->next();
    for (const int64_t id : batch.image_ids) ++seen[id], ++delivered;
  }
  for (size_t i = 0; i < factors.size(); ++i) {
    EXPECT_NEAR(seen[dataset->records[i].image_id], delivered * factors[i] / images, 6)
        << "factor " << factors[i];
  }
  EXPECT_THROW(f.config.set("DATALOADER.REPEAT_THRESHOLD", "2"), Error);
  EXPECT_THROW(f.config.set("DATALOADER.SAMPLER_TRAIN", "ClassAwareSampler"), Error);
}

// Through the configuration: a crop trains (the loader's batches are of cropped images), and a
// size its type cannot take is refused naming INPUT.CROP.SIZE.
TEST(Build, RandomCropFromTheConfigurationAndItsBadSizes) {
  Fixture f;
  Config& config = f.config;
  config.set("INPUT.MIN_SIZE_TRAIN", "[64]");
  config.set("INPUT.MAX_SIZE_TRAIN", "1000");
  config.set("INPUT.CROP.ENABLED", "true");
  config.set("INPUT.CROP.TYPE", "absolute");
  config.set("INPUT.CROP.SIZE", "[32, 40]");
  const auto dataset = build_dataset(config, true);
  auto loader = build_train_loader(config, dataset, 0, 1);
  for (int k = 0; k < 3; ++k) {
    const Batch b = *loader->next();
    for (int64_t i = 0; i < b.size(); ++i) {
      // 32 x 40 resized to short side 64: 64 x 80.
      EXPECT_EQ(b.image_sizes[i][0], 64);
      EXPECT_EQ(b.image_sizes[i][1], 80);
      if (b.targets[i].size() > 0) {
        EXPECT_LE(b.targets[i].boxes.max().item<float>(), 80.f);
        EXPECT_GE(b.targets[i].boxes.min().item<float>(), 0.f);
      }
    }
  }
  config.set("INPUT.CROP.SIZE", "[0.5, 40]");
  try {
    build_train_loader(config, dataset, 0, 1);
    FAIL() << "a fractional absolute size was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("INPUT.CROP.SIZE"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("whole pixels"), std::string::npos) << e.what();
  }
  config.set("INPUT.CROP.SIZE", "[32]");
  try {
    build_train_loader(config, dataset, 0, 1);
    FAIL() << "a size of one number was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("INPUT.CROP.SIZE needs two numbers"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(config.set("INPUT.CROP.TYPE", "random"), Error);
}

TEST(Build, TestLoadersCoverTheSplitOnceOverRanks) {
  Fixture f;
  const auto dataset = build_dataset(f.config, false);
  EXPECT_EQ(dataset->size(), 3u);
  std::multiset<int64_t> seen;
  for (int rank = 0; rank < 2; ++rank) {
    auto loader = build_test_loader(f.config, dataset, rank, 2);
    while (auto b = loader->next()) {
      for (size_t j = 0; j < b->image_ids.size(); ++j) {
        seen.insert(b->image_ids[j]);
        EXPECT_FALSE(b->flipped[j]);
        EXPECT_EQ(std::min(b->image_sizes[j][0], b->image_sizes[j][1]), 64);
      }
    }
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(std::set<int64_t>(seen.begin(), seen.end()).size(), 3u);
}

TEST(Build, ConfigErrorsNameTheKey) {
  Fixture f;
  try {
    f.config.set("DATASETS.FORMAT", "voc");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'DATASETS.FORMAT' is 'voc'"), std::string::npos)
        << e.what();
  }
  f.config.set("DATASETS.TRAIN_ANNOTATIONS", f.dir.path() + "/missing.json");
  try {
    build_dataset(f.config, true);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no annotation file at " + f.dir.path() + "/missing.json"),
              std::string::npos)
        << e.what();
  }
}

TEST(Build, Detectron2DatasetNamesResolveUnderDetectron2Datasets) {
  Config c = Config::defaults();
  c.apply_overrides({"DATASETS.TRAIN=(\"coco_2017_train\",)", "DATASETS.TEST=coco_2017_val_100"});
  unsetenv("DETECTRON2_DATASETS");
  Config by_default = c;
  resolve_dataset_names(by_default);
  EXPECT_EQ(by_default.get<std::string>("DATASETS.TRAIN_ANNOTATIONS"),
            "datasets/coco/annotations/instances_train2017.json");
  EXPECT_EQ(by_default.get<std::string>("DATASETS.TEST_IMAGES"), "datasets/coco/val2017");
  setenv("DETECTRON2_DATASETS", "/data/d2", 1);
  // Explicit paths win over the name, key by key.
  c.apply_overrides({"DATASETS.TRAIN_IMAGES=/fast/train2017"});
  resolve_dataset_names(c);
  unsetenv("DETECTRON2_DATASETS");
  EXPECT_EQ(c.get<std::string>("DATASETS.TRAIN_ANNOTATIONS"),
            "/data/d2/coco/annotations/instances_train2017.json");
  EXPECT_EQ(c.get<std::string>("DATASETS.TRAIN_IMAGES"), "/fast/train2017");
  EXPECT_EQ(c.get<std::string>("DATASETS.TEST_ANNOTATIONS"),
            "/data/d2/coco/annotations/instances_val2017_100.json");
  EXPECT_NE(c.source("DATASETS.TRAIN_ANNOTATIONS").find("coco_2017_train"), std::string::npos);
  Config unknown = Config::defaults();
  unknown.apply_overrides({"DATASETS.TRAIN=lvis_v1_train"});
  EXPECT_THROW(resolve_dataset_names(unknown), Error);
  Config several = Config::defaults();
  several.apply_overrides({"DATASETS.TRAIN=[coco_2017_train, coco_2014_train]"});
  EXPECT_THROW(resolve_dataset_names(several), Error);
}

TEST(Build, RangeSamplingDrawsEveryShortSideInTheRange) {
  Fixture f;
  f.config.set("INPUT.MIN_SIZE_TRAIN", "(40, 44)");
  f.config.set("INPUT.MIN_SIZE_TRAIN_SAMPLING", "range");
  f.config.set("DATALOADER.ASPECT_RATIO_GROUPING", "false");
  const auto dataset = build_dataset(f.config, true);
  auto loader = build_train_loader(f.config, dataset, 0, 1);
  std::set<int64_t> short_sides;
  for (int k = 0; k < 40; ++k) {
    const Batch b = *loader->next();
    for (const auto& [h, w] : b.image_sizes) short_sides.insert(std::min(h, w));
  }
  // Choice sampling of (40, 44) would give only 40 and 44.
  EXPECT_EQ(short_sides, (std::set<int64_t>{40, 41, 42, 43, 44}));
  f.config.set("INPUT.MIN_SIZE_TRAIN", "(40, 44, 48)");
  EXPECT_THROW(build_train_loader(f.config, dataset, 0, 1), Error);
}

}  // namespace
}  // namespace largedet::data
