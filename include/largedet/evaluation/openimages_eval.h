// OpenImages detection metrics (mAP@0.5) as the TF Object Detection API defines them, checked
// against it on the vectors of tests/evaluation/data/oid_eval. Two protocols:
// - challenge (OpenImagesChallengeEvaluator, the challenges' metric): a detection counts only
//   where its class is "evaluatable" in its image (a verified image-level label, positive or
//   negative, or a box there); detections left unmatched that lie inside a group-of box
//   (intersection over the detection's area >= 0.5) are not false positives: each group-of box
//   that got any counts as one true positive scored with its best detection, and one instance;
// - v2 (OpenImagesDetectionEvaluator, the V2-V4 sets' metric): every detection counts, image-level
//   labels are not used, detections inside group-of boxes are ignored and group-of boxes are not
//   instances (group_of_weight 0).
// Both: detections (score order) match non-group-of boxes at IoU >= 0.5, each box once, the first
// box of the highest IoU in file order; duplicates are false positives; detections with
// XMin >= XMax or YMin >= YMax are dropped; AP per class is the all-point interpolated area (VOC
// 2010+); mAP is the mean over the classes that have ground-truth instances. Equal scores rank by
// ImageID, then by file order (the TF code's sort is unstable there: docs/evaluation.md).
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
  size_t num_groundtruth = 0;  // instances: challenge: a group-of box once; v2: not at all
  size_t num_detections = 0;   // evaluatable detections
};

struct OidEvalResult {
  double map = 0;  // mean AP over classes with ground truth (NaN when none has)
  std::vector<OidClassResult> per_class;  // classes with ground truth, sorted by label
  // Left out: rows of classes outside OidEvalParams::classes, detections of images without
  // ground truth, and detections with XMin >= XMax or YMin >= YMax.
  size_t boxes_of_other_classes = 0, labels_of_other_classes = 0, detections_of_other_classes = 0;
  size_t detections_of_other_images = 0, empty_detections = 0;
  std::string summary() const;
  // One line on what was left out (empty when nothing was), so that a wrong class list or
  // ImageID format shows.
  std::string left_out() const;
};

enum class OidProtocol { kChallenge, kV2 };

// "challenge" or "v2"; anything else throws, naming `where`.
OidProtocol oid_protocol_from_name(const std::string& name, const std::string& where);

struct OidEvalParams {
  OidProtocol protocol = OidProtocol::kChallenge;
  // The class list (the challenge's label map: class MIDs). Boxes, image-level labels and
  // detections of other classes are left out. Empty: every class of the ground truth.
  std::vector<std::string> classes;
  double iou_threshold = 0.5;
  int threads = 0;  // <= 0: every usable core
};

OidEvalResult evaluate_openimages(const std::vector<OidBox>& groundtruth,
                                  const std::vector<OidImageLabel>& image_labels,
                                  const std::vector<OidDetection>& detections,
                                  const OidEvalParams& params = {});

// The ground truth of an OpenImages evaluation. With a hierarchy JSON, both files are first
// expanded along it (openimages_hierarchy.h), as the challenge scores them; files that are already
// expanded are used as they are. What was done is logged.
struct OidGroundTruth {
  std::vector<OidBox> boxes;
  std::vector<OidImageLabel> image_labels;
};
OidGroundTruth load_oid_ground_truth(const std::string& boxes_csv,
                                     const std::string& image_labels_csv = "",
                                     const std::string& hierarchy_json = "");

// A class description line: MID,Name (no header; the name may be quoted). Its order is the label
// order of training; for evaluation it is the class list (OidEvalParams::classes).
struct OidClass {
  std::string mid, name;
};
std::vector<OidClass> load_oid_class_descriptions(const std::string& path);

// The challenge's CSV files, columns found by their header names:
// boxes: ImageID, LabelName, XMin, XMax, YMin, YMax, IsGroupOf;
// image-level labels: ImageID, LabelName, Confidence;
// detections: ImageID, LabelName, Score, XMin, YMin, XMax, YMax.
// Errors name the file and line.
std::vector<OidBox> load_oid_boxes_csv(const std::string& path);
std::vector<OidImageLabel> load_oid_image_labels_csv(const std::string& path);
// The same from text; `where` names it in errors.
std::vector<OidBox> parse_oid_boxes_csv(const std::string& text, const std::string& where);
std::vector<OidImageLabel> parse_oid_image_labels_csv(const std::string& text,
                                                      const std::string& where);
std::vector<OidDetection> load_oid_detections_csv(const std::string& path);
// The detections CSV from text (`where` names it in errors), and the text of one, header
// included, with 17 significant digits so that reading it back gives the same doubles.
std::vector<OidDetection> parse_oid_detections_csv(const std::string& text,
                                                   const std::string& where = "<detections>");
std::string oid_detections_to_csv(const std::vector<OidDetection>& detections);

}  // namespace largedet::evaluation
