#include "largedet/evaluation/report.h"

#include <cmath>
#include <nlohmann/json.hpp>

namespace largedet::evaluation {
namespace {

nlohmann::json number_or_null(double v) {
  return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v);
}

}  // namespace

struct EvaluationReport::Impl {
  bool per_category = false;
  nlohmann::json stats = nlohmann::json::object();
};

EvaluationReport::EvaluationReport(bool per_category) : impl_(std::make_unique<Impl>()) {
  impl_->per_category = per_category;
}
EvaluationReport::~EvaluationReport() = default;
EvaluationReport::EvaluationReport(EvaluationReport&&) noexcept = default;
EvaluationReport& EvaluationReport::operator=(EvaluationReport&&) noexcept = default;

void EvaluationReport::add(const CocoEvalResult& result) {
  const std::string type = iou_type_name(result.iou_type);
  auto& summary = impl_->stats[type];
  for (size_t i = 0; i < result.stats.size(); ++i)
    summary[kStatNames[i]] = number_or_null(result.stats[i]);
  if (!impl_->per_category) return;
  for (const CategoryResult& c : result.per_category) {
    auto& entry = impl_->stats["per_category"][c.name.empty() ? std::to_string(c.id) : c.name];
    entry["id"] = c.id;
    entry[type] = {{"AP", c.ap}, {"AP50", c.ap50}, {"AP75", c.ap75}};
  }
}

void EvaluationReport::add(const OidEvalResult& result) {
  impl_->stats["oid"]["mAP@0.5"] = number_or_null(result.map);
  if (!impl_->per_category) return;
  for (const OidClassResult& c : result.per_class) {
    impl_->stats["per_category"][c.label]["oid"] = {{"AP", number_or_null(c.ap)},
                                                    {"num_groundtruth", c.num_groundtruth},
                                                    {"num_detections", c.num_detections}};
  }
}

std::string EvaluationReport::to_json() const { return impl_->stats.dump(2) + "\n"; }

}  // namespace largedet::evaluation
