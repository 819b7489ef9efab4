// OpenImages detection metric (the challenge's mAP@0.5), as the TF Object Detection API's
// OpenImagesDetectionChallengeEvaluator defines it:
// - a detection counts only where its class is "evaluatable" in its image: a verified image-level
//   label (positive or negative) or a class with a ground-truth box there; others are dropped;
// - detections (score order) match non-group-of boxes at IoU >= 0.5, each box once;
//   duplicates are false positives;
// - detections left unmatched that lie inside a group-of box (intersection over the detection's
//   area >= 0.5) are not false positives: each group-of box that got any counts as one true
//   positive scored with its best detection, and a group-of box is one ground-truth instance;
// - AP per class is the area under the interpolated precision/recall curve (all points, VOC
//   2010+); mAP is the mean over classes that have ground-truth instances.
// Coordinates are normalised to [0, 1]; boxes have no +1 in their areas.
#pragma once

#include <string>
#include <vector>

namespace largedet::evaluation {

struct OidBox {
  std::string image_id;
  std::string label;  // class MID, e.g. /m/01g317
  double xmin = 0, xmax = 0, ymin = 0, ymax = 0;
  bool is_group_of = false;
};

struct OidImageLabel {
  std::string image_id;
  std::string label;
  bool positive = true;  // Confidence 1: present; 0: verified absent
};

struct OidDetection {
  std::string image_id;
  std::string label;
  double score = 0;
  double xmin = 0, ymin = 0, xmax = 0, ymax = 0;
};

struct OidClassResult {
  std::string label;
  double ap = 0;
  size_t num_groundtruth = 0;  // boxes, a group-of box counting once
  size_t num_detections = 0;   // evaluatable detections
};

struct OidEvalResult {
  double map = 0;  // mean AP over classes with ground truth (NaN when none has)
  std::vector<OidClassResult> per_class;  // classes with ground truth, sorted by label
  std::string summary() const;
};

struct OidEvalParams {
  double iou_threshold = 0.5;
  int threads = 0;  // <= 0: every usable core
};

OidEvalResult evaluate_openimages(const std::vector<OidBox>& groundtruth,
                                  const std::vector<OidImageLabel>& image_labels,
                                  const std::vector<OidDetection>& detections,
                                  const OidEvalParams& params = {});

// The challenge's CSV files, columns found by their header names:
// boxes: ImageID, LabelName, XMin, XMax, YMin, YMax, IsGroupOf;
// image-level labels: ImageID, LabelName, Confidence;
// detections: ImageID, LabelName, Score, XMin, YMin, XMax, YMax.
// Errors name the file and line.
std::vector<OidBox> load_oid_boxes_csv(const std::string& path);
std::vector<OidImageLabel> load_oid_image_labels_csv(const std::string& path);
std::vector<OidDetection> load_oid_detections_csv(const std::string& path);
// The detections CSV from text (`where` names it in errors), and the text of one, header
// included, with 17 significant digits so that reading it back gives the same doubles.
std::vector<OidDetection> parse_oid_detections_csv(const std::string& text,
                                                   const std::string& where = "<detections>");
std::string oid_detections_to_csv(const std::vector<OidDetection>& detections);

}  // namespace largedet::evaluation
