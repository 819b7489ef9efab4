// libFuzzer target: the COCO results reader (evaluation layer) against a small fixed ground truth
// that holds every mask form, so that the whole reader runs (ids, scores, boxes, and masks decoded
// at their image's size); then the writer and the evaluator on what it accepted.
// Any input must give detections or a largedet::Error; never a crash, a leak or a hang. Accepted
// detections must survive a write and a read unchanged, and evaluate without an error.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "largedet/core/error.h"
#include "largedet/core/logging.h"
#include "largedet/evaluation/coco_eval.h"
#include "largedet/evaluation/results.h"

namespace {

using namespace largedet::evaluation;

// Images of several shapes (one 1x1, one without pixels); polygons, a box-style polygon, a crowd
// uncompressed RLE and a compressed RLE.
const char* kGroundTruth = R"({
 "images": [{"id": 1, "width": 20, "height": 10}, {"id": 2, "width": 30, "height": 30},
            {"id": 3, "width": 1, "height": 1}, {"id": 4, "width": 0, "height": 0}],
 "categories": [{"id": 3, "name": "cat"}, {"id": 9, "name": "dog"}],
 "annotations": [
  {"id": 1, "image_id": 1, "category_id": 3, "bbox": [1, 2, 7, 4], "area": 28,
   "segmentation": [[1, 2, 8, 2, 8, 6, 1, 6]]},
  {"id": 2, "image_id": 2, "category_id": 9, "bbox": [20, 0, 10, 30], "area": 300, "iscrowd": 1,
   "segmentation": {"size": [30, 30], "counts": [600, 300]}},
  {"id": 3, "image_id": 2, "category_id": 9, "bbox": [4, 5, 5, 7], "area": 35,
   "segmentation": {"size": [30, 30], "counts": "m37g00000000ac0"}},
  {"id": 4, "image_id": 3, "category_id": 3, "bbox": [0, 0, 1, 1], "area": 1,
   "segmentation": [[0, 0, 1, 1]]}
 ]})";

bool same(const Detection& a, const Detection& b) {
  return a.image_id == b.image_id && a.category_id == b.category_id && a.score == b.score &&
         a.has_bbox == b.has_bbox && (!a.has_bbox || a.bbox == b.bbox) &&
         a.segmentation.empty() == b.segmentation.empty() &&
         a.segmentation.rle == b.segmentation.rle;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  largedet::log::set_level(largedet::log::Level::kOff);
  static const CocoDataset gt = parse_coco_json(kGroundTruth, "gt.json");
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  std::vector<Detection> detections;
  try {
    detections = parse_coco_results(json, gt, "fuzz.json");
  } catch (const largedet::Error&) {
    return 0;
  }
  // Errors from here on are findings: they escape and libFuzzer reports the input.
  const auto again = parse_coco_results(coco_results_to_json(detections, &gt), gt, "written.json");
  if (again.size() != detections.size()) __builtin_trap();
  for (size_t i = 0; i < again.size(); ++i) {
    if (!same(detections[i], again[i])) __builtin_trap();
  }
  for (IouType type : {IouType::kBbox, IouType::kSegm}) {
    CocoEvalParams params;
    params.iou_type = type;
    params.threads = 1;
    evaluate_coco(gt, detections, params);
  }
  return 0;
}
