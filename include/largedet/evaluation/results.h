// Detections and the COCO results JSON ([{"image_id", "category_id", "score", "bbox" and/or
// "segmentation"}, ...]): the reader (with the checks pycocotools' COCO.loadRes does, and more)
// and the writer. The trainer builds Detection values in memory and skips the file.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "largedet/evaluation/coco_json.h"

namespace largedet::evaluation {

struct Detection {
  int64_t image_id = 0;
  int64_t category_id = 0;
  double score = 0;
  BoxXywh bbox{0, 0, 0, 0};  // x, y, w, h in pixels
  // False for a mask result without a "bbox": the bbox evaluator then takes the mask's own box
  // (rle_to_bbox, pycocotools' toBbox in loadRes), only where a ground truth needs an IoU.
  bool has_bbox = false;
  Segmentation segmentation;  // usually a compressed RLE; kNone for box-only results
  // The area used for the small/medium/large ranges. NaN means "derive it": pycocotools' loadRes
  // uses the box's w * h when the results carry boxes (its first entry has a "bbox") and the
  // mask's area otherwise; read_coco_results fills it in that way.
  double area = std::nan("");
};

// A box detection from the library's (x1, y1, x2, y2) pixel boxes (COCO results are x, y, w, h).
Detection box_detection(int64_t image_id, int64_t category_id, double score, double x1, double y1,
                        double x2, double y2);

// Parses a results file and checks every entry against the ground truth: the image and category
// must exist there, the score must be a finite number, boxes must be 4 finite numbers with
// w, h >= 0 and masks valid RLEs of the image's size. Errors name the entry ("results[12]").
// Files over 1 MB are parsed, masks decoded, in parts on `threads` threads (0: every usable core).
std::vector<Detection> parse_coco_results(std::string_view json, const CocoDataset& gt,
                                          const std::string& where = "<results>", int threads = 0);
std::vector<Detection> load_coco_results(const std::string& path, const CocoDataset& gt,
                                         int threads = 0);

// The results JSON of `detections`: "bbox" when has_bbox, "segmentation" (compressed RLE) when it
// has a mask (polygons and uncompressed RLEs are compressed at `gt`'s image size, or written as
// they are when `gt` is null). Scores and boxes keep 17 significant digits, so that reading the
// file back gives the same doubles.
std::string coco_results_to_json(const std::vector<Detection>& detections,
                                 const CocoDataset* gt = nullptr);
void save_coco_results(const std::string& path, const std::vector<Detection>& detections,
                       const CocoDataset* gt = nullptr);

}  // namespace largedet::evaluation
