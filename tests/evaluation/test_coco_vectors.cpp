// The checked-in vectors (tests/evaluation/data/coco_eval, from make_coco_vectors.py): crowds,
// empty images, duplicates, wrong classes and images with more than 100 detections. Our 12 stats
// must equal the ones pycocotools printed, within 1e-6, and our summary must print the same lines.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "eval_test_util.h"
#include "largedet/core/file_io.h"
#include "largedet/evaluation/coco_eval.h"

namespace largedet::evaluation {
namespace {

void check_type(IouType type, const char* results_file) {
  const std::string dir = testing::coco_vectors_dir();
  const auto expected = nlohmann::json::parse(read_file(dir + "/expected.json"));
  const CocoDataset gt = load_coco_json(dir + "/gt.json");
  const auto detections = load_coco_results(dir + "/" + results_file, gt);
  for (int threads : {1, 2, 3}) {
    CocoEvalParams params;
    params.iou_type = type;
    params.threads = threads;
    const CocoEvalResult result = evaluate_coco(gt, detections, params);
    const std::string name = iou_type_name(type);
    for (size_t i = 0; i < 12; ++i) {
      EXPECT_NEAR(result.stats[i], expected[name][i].get<double>(), 1e-6)
          << name << " " << kStatNames[i] << " with " << threads << " threads";
    }
    std::string lines;
    for (const auto& line : expected[name + "_summary"]) lines += line.get<std::string>() + "\n";
    EXPECT_EQ(result.summary(), lines);
  }
}

TEST(CocoVectors, BboxStatsEqualPycocotools) { check_type(IouType::kBbox, "dets_bbox.json"); }
TEST(CocoVectors, SegmStatsEqualPycocotools) { check_type(IouType::kSegm, "dets_segm.json"); }

TEST(CocoVectors, ParsesEveryEntry) {
  const std::string dir = testing::coco_vectors_dir();
  const auto raw = nlohmann::json::parse(read_file(dir + "/gt.json"));
  const CocoDataset gt = load_coco_json(dir + "/gt.json");
  ASSERT_EQ(gt.images.size(), raw["images"].size());
  ASSERT_EQ(gt.annotations.size(), raw["annotations"].size());
  ASSERT_EQ(gt.categories.size(), raw["categories"].size());
  for (size_t i = 0; i < gt.annotations.size(); ++i) {
    const auto& a = raw["annotations"][i];
    EXPECT_EQ(gt.annotations[i].id, a["id"].get<int64_t>());
    EXPECT_EQ(gt.annotations[i].area, a["area"].get<double>());
    EXPECT_EQ(gt.annotations[i].iscrowd, a["iscrowd"].get<int>() != 0);
    for (int k = 0; k < 4; ++k)
      EXPECT_EQ(gt.annotations[i].bbox[size_t(k)], a["bbox"][k].get<double>());
  }
}

}  // namespace
}  // namespace largedet::evaluation
