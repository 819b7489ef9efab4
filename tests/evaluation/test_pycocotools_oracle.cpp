// Random cases, fresh every run, scored by pycocotools itself (from the test venv) and by us:
// the 12 stats, the whole precision/recall arrays, the printed summary, and every ground-truth
// mask's compressed string and area must agree. Skipped where pycocotools cannot be imported.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "eval_test_util.h"
#include "largedet/core/file_io.h"
#include "largedet/evaluation/coco_eval.h"

namespace largedet::evaluation {
namespace {

using nlohmann::json;

// Runs the oracle; returns its JSON, or null when pycocotools is missing.
json run_oracle(const std::string& dir) {
  const std::string script =
      std::string(LARGEDET_SOURCE_DIR) + "/tests/evaluation/pycocotools_oracle.py";
  const std::string command = std::string("'") + LARGEDET_PYTHON + "' '" + script + "' '" + dir +
                              "/gt.json' '" + dir + "/bbox.json' '" + dir + "/segm.json' '" + dir +
                              "/both.json' '" + dir + "/oracle.json' > '" + dir +
                              "/oracle.log' 2>&1";
  const int status = std::system(command.c_str());
  if (WIFEXITED(status) && WEXITSTATUS(status) == 3) return nullptr;
  EXPECT_EQ(status, 0) << "oracle failed: " << read_file(dir + "/oracle.log");
  if (status != 0) return nullptr;
  return json::parse(read_file(dir + "/oracle.json"));
}

void expect_same_evaluation(const CocoEvalResult& ours, const json& theirs, const char* type) {
  SCOPED_TRACE(type);
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_NEAR(ours.stats[i], theirs["stats"][i].get<double>(), 1e-6) << kStatNames[i];
  }
  const auto precision = theirs["precision"].get<std::vector<double>>();
  const auto recall = theirs["recall"].get<std::vector<double>>();
  ASSERT_EQ(ours.precision.size(), precision.size());
  ASSERT_EQ(ours.recall.size(), recall.size());
  size_t bad = 0;
  for (size_t i = 0; i < precision.size(); ++i)
    bad += std::abs(ours.precision[i] - precision[i]) > 1e-9;
  for (size_t i = 0; i < recall.size(); ++i) bad += std::abs(ours.recall[i] - recall[i]) > 1e-9;
  EXPECT_EQ(bad, 0u) << "precision/recall entries that differ from pycocotools";
  EXPECT_EQ(ours.summary(), theirs["summary"].get<std::string>());
}

TEST(PycocotoolsOracle, RandomCasesMatchBboxSegmAndMasks) {
  const uint32_t seed = testing::run_seed();
  SCOPED_TRACE("seed " + std::to_string(seed) +
               " (rerun with LARGEDET_TEST_SEED=" + std::to_string(seed) + ")");
  for (uint32_t round = 0; round < 3; ++round) {
    const auto c = testing::make_random_case(seed + round, 30 + int(round) * 15);
    const std::string dir = testing::make_temp_dir();
    testing::write_text(dir + "/gt.json", testing::coco_dataset_to_json(c.gt));
    save_coco_results(dir + "/bbox.json", c.bbox_results);
    save_coco_results(dir + "/segm.json", c.segm_results);
    // detectron2 writes masks with boxes: loadRes then takes the box's w * h as the area.
    std::vector<Detection> both = c.segm_results;
    for (Detection& det : both) {
      const Rle rle = rle_from_string(det.segmentation.compressed, det.segmentation.rle.h,
                                      det.segmentation.rle.w);
      const BoxXywh tight = rle_to_bbox(rle);
      det.bbox = {tight[0] - 0.5, tight[1] - 0.5, tight[2] + 3.25, tight[3] + 1};
      det.has_bbox = true;
    }
    save_coco_results(dir + "/both.json", both);
    const json oracle = run_oracle(dir);
    if (oracle.is_null()) {
      if (::testing::Test::HasFailure()) return;
      GTEST_SKIP() << "pycocotools cannot be imported by " << LARGEDET_PYTHON;
    }
    // Our side reads the same files.
    const CocoDataset gt = load_coco_json(dir + "/gt.json");
    const auto bbox = load_coco_results(dir + "/bbox.json", gt);
    const auto segm = load_coco_results(dir + "/segm.json", gt);
    CocoEvalParams params;
    params.threads = 2;
    expect_same_evaluation(evaluate_coco(gt, bbox, params), oracle["bbox"], "bbox");
    params.iou_type = IouType::kSegm;
    expect_same_evaluation(evaluate_coco(gt, segm, params), oracle["segm"], "segm");
    expect_same_evaluation(evaluate_coco(gt, load_coco_results(dir + "/both.json", gt), params),
                           oracle["segm_with_boxes"], "segm with boxes");
    // Box AP of mask results without boxes: loadRes gives each its mask's box.
    params.iou_type = IouType::kBbox;
    expect_same_evaluation(evaluate_coco(gt, segm, params), oracle["bbox_of_masks"],
                           "bbox of masks");

    // Ground-truth masks: polygons rasterised and merged, uncompressed RLEs compressed.
    size_t mask_mismatches = 0;
    for (const auto& ann : gt.annotations) {
      const CocoImage& img = gt.images[size_t(gt.image_index(ann.image_id))];
      const Rle rle =
          segmentation_to_rle(ann.segmentation, uint32_t(img.height), uint32_t(img.width));
      const auto& expected = oracle["gt_masks"][std::to_string(ann.id)];
      if (rle_to_string(rle) != expected[0].get<std::string>() ||
          rle_area(rle) != expected[1].get<uint64_t>()) {
        if (++mask_mismatches < 5) ADD_FAILURE() << "mask of annotation " << ann.id << " differs";
      }
    }
    EXPECT_EQ(mask_mismatches, 0u);
    // Detection masks: loadRes' area, and toBbox as rle_to_bbox gives it to the bbox evaluator.
    ASSERT_EQ(oracle["dt_masks"].size(), segm.size());
    for (size_t i = 0; i < segm.size(); ++i) {
      EXPECT_EQ(segm[i].area, oracle["dt_masks"][i][0].get<double>()) << "results[" << i << "]";
      const BoxXywh box = rle_to_bbox(segm[i].segmentation.rle);
      for (int k = 0; k < 4; ++k)
        EXPECT_EQ(box[size_t(k)], oracle["dt_masks"][i][1][k].get<double>());
    }
    if (::testing::Test::HasFailure()) return;  // keeps `dir` for a look
    testing::remove_temp_dir(dir);
  }
}

}  // namespace
}  // namespace largedet::evaluation
