// COCO detection evaluation with pycocotools' COCOeval semantics, number for number: IoU
// thresholds .50:.05:.95, 101 recall points, area ranges all/small/medium/large, maxDets 1/10/100,
// crowd regions ignored, greedy matching in score order with pycocotools' stable tie order
// (image id, then file order), the 12 summary statistics and the printed summary.
//
// Multi-threaded: images are matched in parallel, then categories are accumulated in parallel.
// Only per-detection match flags are kept between the two phases, never IoU matrices or masks.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "largedet/evaluation/coco_json.h"
#include "largedet/evaluation/results.h"

namespace largedet::evaluation {

enum class IouType { kBbox, kSegm };
const char* iou_type_name(IouType type);  // "bbox", "segm"

struct CocoEvalParams {
  IouType iou_type = IouType::kBbox;
  // As pycocotools' Params: np.linspace(.5, .95, 10) and np.linspace(0, 1, 101), bit for bit.
  std::vector<double> iou_thresholds = default_iou_thresholds();
  std::vector<double> recall_thresholds = default_recall_thresholds();
  std::vector<int> max_dets = {1, 10, 100};  // ascending; the last one bounds matching
  std::vector<std::array<double, 2>> area_ranges = {
      {0, 1e10}, {0, 32 * 32}, {32 * 32, 96 * 96}, {96 * 96, 1e10}};
  std::vector<std::string> area_labels = {"all", "small", "medium", "large"};
  int threads = 0;  // <= 0: every usable core

  static std::vector<double> default_iou_thresholds();
  static std::vector<double> default_recall_thresholds();
};

struct CategoryResult {
  int64_t id = 0;
  std::string name;
  double ap = -1, ap50 = -1, ap75 = -1;  // -1 where the category has no ground truth
};

struct CocoEvalResult {
  IouType iou_type = IouType::kBbox;
  CocoEvalParams params;
  std::vector<int64_t> category_ids;  // sorted, as pycocotools' params.catIds
  // pycocotools' eval['precision'] [T, R, K, A, M] and eval['recall'] [T, K, A, M], row-major;
  // -1 where there is no ground truth.
  std::vector<double> precision, recall;
  // AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl.
  std::array<double, 12> stats{};
  std::vector<CategoryResult> per_category;

  double precision_at(size_t t, size_t r, size_t k, size_t a, size_t m) const;
  double recall_at(size_t t, size_t k, size_t a, size_t m) const;
  // The 12 lines pycocotools' summarize() prints.
  std::string summary() const;
  // A per-category table: id, name, AP, AP50, AP75 (in percent, like detectron2's).
  std::string category_table() const;
};

extern const std::array<const char*, 12> kStatNames;

// Evaluates `detections` against `gt`. Detections of images or categories that `gt` lacks are
// ignored (as pycocotools does after loadRes' check); load_coco_results rejects them first.
CocoEvalResult evaluate_coco(const CocoDataset& gt, const std::vector<Detection>& detections,
                             const CocoEvalParams& params = {});

}  // namespace largedet::evaluation
