// Evaluation over every rank, as the trainer's periodic evaluation and `largedet evaluate
// --config --weights` run it. Each rank runs the model over its shard of the test set (no
// padding, so no image counts twice); the detections travel to rank 0 as text (COCO results JSON,
// or OpenImages detection CSV lines, with 17 significant digits so that no bit is lost), and rank
// 0 scores them exactly as pycocotools (bbox, and segm for Mask R-CNN) or the OpenImages
// challenge (mAP@0.5) would.
#pragma once

#include <c10/core/Device.h>

#include <map>
#include <string>
#include <vector>

#include "largedet/core/config.h"
#include "largedet/data/batch.h"
#include "largedet/data/records.h"
#include "largedet/evaluation/openimages_eval.h"
#include "largedet/evaluation/results.h"
#include "largedet/modeling/detector.h"

namespace largedet::engine {

struct EvalOptions {
  bool print = true;         // rank 0 prints the COCO summary / the OpenImages mAP line
  std::string results_path;  // rank 0 writes the gathered detections here (.json / .csv)
};

// Scalars on rank 0 ("bbox/AP", "bbox/AP50", ..., "segm/AP", ..., or "oid/mAP@0.5"), in [0, 1];
// an empty map on the other ranks. Leaves the model in eval mode.
std::map<std::string, double> evaluate_detector(modeling::DetectorImpl& model, const Config& config,
                                                const c10::Device& device,
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
