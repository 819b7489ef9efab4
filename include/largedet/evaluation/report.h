// The statistics file of `largedet evaluate --output`, one layout for scoring files and for
// scoring a model over a recipe's test set (docs/evaluation.md, "The statistics file"):
//   {"bbox": {"AP": 0.41, "AP50": ..., ..., "ARl": ...}, "segm": {...}, "oid": {"mAP@0.5": ...},
//    "per_category": {"<name>": {"id": 3, "bbox": {"AP": ..., "AP50": ..., "AP75": ...},
//                                "segm": {...}, "oid": {"AP": ..., "num_groundtruth": ...,
//                                                       "num_detections": ...}}}}
// with "per_category" only when asked for. NaN (no ground truth anywhere) is written as null.
#pragma once

#include <memory>
#include <string>

#include "largedet/evaluation/coco_eval.h"
#include "largedet/evaluation/openimages_eval.h"

namespace largedet::evaluation {

class EvaluationReport {
 public:
  explicit EvaluationReport(bool per_category = false);
  ~EvaluationReport();
  EvaluationReport(EvaluationReport&&) noexcept;
  EvaluationReport& operator=(EvaluationReport&&) noexcept;

  void add(const CocoEvalResult& result);
  void add(const OidEvalResult& result);
  // Pretty-printed JSON, newline-terminated.
  std::string to_json() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace largedet::evaluation
