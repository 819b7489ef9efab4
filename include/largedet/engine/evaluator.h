// Evaluation over every rank, as the trainer's periodic evaluation and `largedet evaluate
// --config --weights` run it. Each rank runs the model over its shard of the test set (no
// padding, so no image counts twice); the detections travel to rank 0 as text (COCO results JSON,
// or OpenImages detection CSV lines, with 17 significant digits so that no bit is lost), and rank
// 0 scores them exactly as pycocotools (bbox, and segm for Mask R-CNN) or the OpenImages
// challenge (mAP@0.5) would.
#pragma once

#include <c10/core/Device.h>

#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "largedet/core/config.h"
#include "largedet/data/batch.h"
#include "largedet/data/records.h"
#include "largedet/evaluation/coco_json.h"
#include "largedet/evaluation/openimages_eval.h"
#include "largedet/evaluation/results.h"
#include "largedet/modeling/detector.h"

namespace largedet::engine {

// The test set, read once per run: the records every rank runs the model over and, on the rank
// that scores, the ground truth (for COCO the one parse of the file serves both).
struct TestSet {
  std::shared_ptr<const data::Dataset> dataset;
  bool has_ground_truth = false;                        // loaded with_ground_truth
  std::shared_ptr<const evaluation::CocoDataset> coco;  // DATASETS.FORMAT coco
  // openimages: TEST_ANNOTATIONS and TEST_IMAGE_LABELS, expanded along TEST_HIERARCHY if set
  evaluation::OidGroundTruth oid;
  evaluation::OidProtocol oid_protocol = evaluation::OidProtocol::kChallenge;  // TEST.OID_PROTOCOL
};

// Reads DATASETS.TEST_*; the ground truth only `with_ground_truth` (rank 0). Checks that the set
// has the recipe's NUM_CLASSES classes (and the class MIDs OpenImages results need).
TestSet load_test_set(const Config& config, bool with_ground_truth);

struct EvalOptions {
  // Polled after every batch on every rank: true stops this rank's inference, and the evaluation
  // then ends on every rank with EvaluationInterrupted (a SIGTERM must not wait for 5,000 images).
  std::function<bool()> should_stop;
  bool print = true;          // rank 0 prints the COCO summary / the OpenImages mAP line
  bool per_category = false;  // with print: also the per-category AP table / per-class APs
  int threads = 0;            // rank 0's scoring threads; <= 0: every usable core
  std::string results_path;   // rank 0 writes the gathered detections here (.json / .csv)
  std::string report_path;    // rank 0 writes the statistics here (evaluation/report.h)
};

// Thrown on every rank when any rank's EvalOptions::should_stop said so: no scores.
struct EvaluationInterrupted : std::exception {
  const char* what() const noexcept override { return "evaluation interrupted by a stop request"; }
};

// Scalars on rank 0 ("bbox/AP", "bbox/AP50", ..., "segm/AP", ..., or "oid/mAP@0.5"), in [0, 1];
// an empty map on the other ranks. Leaves the model in eval mode.
// Every rank calls it with the set from load_test_set (with the ground truth on rank 0).
std::map<std::string, double> evaluate_detector(modeling::DetectorImpl& model, const Config& config,
                                                const TestSet& test, const c10::Device& device,
                                                const EvalOptions& options = {});

// One image's detections as COCO results (dataset category ids, masks thresholded at 0.5 and
// run-length encoded) or as OpenImages detections (class MIDs, boxes as fractions of the image).
std::vector<evaluation::Detection> to_coco_detections(const modeling::Detections& detections,
                                                      int64_t image_id,
                                                      const data::Dataset& dataset);
std::vector<evaluation::OidDetection> to_oid_detections(const modeling::Detections& detections,
                                                        const data::Record& record,
                                                        const data::Dataset& dataset,
                                                        int64_t height, int64_t width);

}  // namespace largedet::engine
