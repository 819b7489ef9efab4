#include "largedet/data/openimages_dataset.h"

#include <unordered_map>

#include "box_check.h"
#include "largedet/core/error.h"
#include "largedet/evaluation/openimages_eval.h"

namespace largedet::data {

Dataset load_openimages_dataset(const OpenImagesOptions& options) {
  Dataset dataset;
  dataset.name = options.boxes_csv;
  dataset.bad_input = std::make_shared<BadInputLog>(options.strict);
  BadInputLog& bad = *dataset.bad_input;

  std::unordered_map<std::string, int64_t> label_of;
  for (const auto& c : evaluation::load_oid_class_descriptions(options.class_descriptions_csv)) {
    dataset.class_names.push_back(c.name);
    dataset.class_mids.push_back(c.mid);
    dataset.category_ids.push_back(static_cast<int64_t>(dataset.class_names.size()));
    label_of[c.mid] = static_cast<int64_t>(dataset.class_names.size());
  }

  std::string root = options.image_root;
  if (!root.empty() && root.back() != '/') root += '/';
  std::unordered_map<std::string, size_t> record_of;
  auto record = [&](const std::string& image_id) -> Record& {
    auto [it, added] = record_of.emplace(image_id, dataset.records.size());
    if (added) {
      Record r;
      r.image_id = static_cast<int64_t>(dataset.records.size());
      r.source_id = image_id;
      r.path = root + image_id + ".jpg";
      r.normalized_boxes = true;
      dataset.records.push_back(std::move(r));
    }
    return dataset.records[it->second];
  };

  const auto boxes = evaluation::load_oid_boxes_csv(options.boxes_csv);
  for (size_t i = 0; i < boxes.size(); ++i) {
    const auto& b = boxes[i];
    // Line i + 2: the header is line 1.
    auto where = [&] {
      return detail::concat(options.boxes_csv, ":", i + 2, " (", b.image_id, ")");
    };
    Record& r = record(b.image_id);  // listed even when none of its boxes is usable
    auto label = label_of.find(b.label);
    if (label == label_of.end()) {
      bad.report(BadInput::kUnknownCategory, "box of unknown class " + b.label, where());
      continue;
    }
    Instance instance;
    auto as_written = [&] {
      return detail::concat("XMin ", b.xmin, ", XMax ", b.xmax, ", YMin ", b.ymin, ", YMax ",
                            b.ymax);
    };
    if (!check_box_and_report({b.xmin, b.ymin, b.xmax, b.ymax}, 1.0, 1.0, bad, &instance.box, where,
                              as_written)) {
      continue;
    }
    instance.label = label->second;
    instance.category_id = label->second;
    instance.is_group_of = b.is_group_of;
    r.instances.push_back(std::move(instance));
  }

  if (!options.image_labels_csv.empty()) {
    for (const auto& l : evaluation::load_oid_image_labels_csv(options.image_labels_csv)) {
      auto label = label_of.find(l.label);
      if (label == label_of.end()) continue;  // image-level classes beyond the boxable ones
      if (options.filter_empty && !record_of.count(l.image_id)) continue;
      Record& r = record(l.image_id);
      (l.positive ? r.positive_labels : r.negative_labels).push_back(label->second);
    }
  }
  if (options.filter_empty) {
    std::vector<Record> kept;
    for (auto& r : dataset.records) {
      if (!r.instances.empty()) kept.push_back(std::move(r));
    }
    dataset.records = std::move(kept);
  }
  return dataset;
}

}  // namespace largedet::data
