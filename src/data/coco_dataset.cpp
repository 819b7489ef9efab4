#include "largedet/data/coco_dataset.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>

#include <simdjson.h>

#include "box_check.h"
#include "largedet/core/error.h"
#include "largedet/core/file_io.h"

namespace largedet::data {

namespace {

// Polygons that cannot enclose an area: their masks would be empty (detectron2's load_coco_json
// drops the instances of polygons under 3 points too; points on one line we drop as well, where
// it trains an empty mask). Returns "" when fine.
std::string degenerate_polygon(const evaluation::Segmentation& s) {
  if (s.kind != evaluation::Segmentation::Kind::kPolygons) return "";
  if (s.polygons.empty()) return "segmentation is an empty list of polygons";
  for (size_t k = 0; k < s.polygons.size(); ++k) {
    const size_t n = s.polygons[k].size();
    if (n % 2 != 0) {
      return detail::concat("polygon ", k, " has an odd number of coordinates (", n, ")");
    }
    if (n < 6) return detail::concat("polygon ", k, " has ", n / 2, " points (3 make an area)");
    // Twice the signed area (shoelace): 0 for points on one line, whose mask is empty.
    const auto& p = s.polygons[k];
    double twice_area = 0;
    for (size_t i = 0; i < n; i += 2) {
      const size_t j = (i + 2) % n;
      twice_area += p[i] * p[j + 1] - p[j] * p[i + 1];
    }
    if (twice_area == 0)
      return detail::concat("polygon ", k, " encloses no area (its points lie on one line)");
  }
  return "";
}

// Segmentations that the mask rasteriser could not handle sanely (found by fuzz_coco_json: a
// polygon vertex at 1e33 made rle_from_polygon allocate 17 GB). Returns "" when fine.
std::string segmentation_problem(const evaluation::Segmentation& s, int width, int height) {
  using Kind = evaluation::Segmentation::Kind;
  if (s.kind == Kind::kPolygons) {
    const double w = width > 0 ? width : 1e5, h = height > 0 ? height : 1e5;
    for (const auto& polygon : s.polygons) {
      for (size_t i = 0; i < polygon.size(); ++i) {
        const double v = polygon[i], limit = i % 2 == 0 ? w : h;
        if (!std::isfinite(v) || v < -limit || v > 2 * limit) {
          return detail::concat("polygon coordinate ", v, " lies far outside the ", width, "x",
                                height, " image");
        }
      }
    }
  } else if (s.kind == Kind::kRle || s.kind == Kind::kCompressedRle) {
    const bool known = width > 0 && height > 0;
    if (known
            ? (s.rle.h != static_cast<uint32_t>(height) || s.rle.w != static_cast<uint32_t>(width))
            : uint64_t{s.rle.h} * s.rle.w > uint64_t{kDefaultMaxImagePixels}) {
      return detail::concat("RLE size [", s.rle.h, ", ", s.rle.w, "] is not the image's [", height,
                            ", ", width, "]");
    }
  }
  return "";
}

// `movable` is `coco` itself when the caller gives up the parse (its segmentations are moved).
Dataset to_dataset(const evaluation::CocoDataset& coco, evaluation::CocoDataset* movable,
                   const std::string& where_name, const CocoDatasetOptions& options) {
  Dataset dataset;
  dataset.name = where_name;
  dataset.bad_input = std::make_shared<BadInputLog>(options.strict);
  BadInputLog& bad = *dataset.bad_input;

  // Stable contiguous labels: categories sorted by id.
  std::vector<const evaluation::CocoCategory*> categories;
  for (const auto& c : coco.categories) categories.push_back(&c);
  std::sort(categories.begin(), categories.end(),
            [](const auto* a, const auto* b) { return a->id < b->id; });
  std::unordered_map<int64_t, int64_t> label_of;
  for (const auto* c : categories) {
    dataset.class_names.push_back(c->name);
    dataset.category_ids.push_back(c->id);
    label_of[c->id] = static_cast<int64_t>(dataset.class_names.size());
  }

  std::vector<Record> records(coco.images.size());
  std::unordered_map<int64_t, size_t> record_of;
  record_of.reserve(coco.images.size());
  std::string root = options.image_root;
  if (!root.empty() && root.back() != '/') root += '/';
  for (size_t i = 0; i < coco.images.size(); ++i) {
    const auto& image = coco.images[i];
    Record& r = records[i];
    r.image_id = image.id;
    r.path = root + image.file_name;
    r.width = image.width;
    r.height = image.height;
    record_of.emplace(image.id, i);
  }

  for (size_t k = 0; k < coco.annotations.size(); ++k) {
    const auto& a = coco.annotations[k];
    // Built only when something is reported: 860K annotations must not each format a string.
    auto where = [&] { return detail::concat(where_name, ": annotation id ", a.id); };
    auto record = record_of.find(a.image_id);
    if (record == record_of.end()) {
      bad.report(BadInput::kUnknownImage,
                 detail::concat("annotation names unknown image id ", a.image_id), where());
      continue;
    }
    auto label = label_of.find(a.category_id);
    if (label == label_of.end()) {
      bad.report(BadInput::kUnknownCategory,
                 detail::concat("annotation names unknown category id ", a.category_id), where());
      continue;
    }
    Record& r = records[record->second];
    Instance instance;
    if (!a.has_bbox) {
      bad.report(BadInput::kInvalidBox, "annotation has no bbox", where());
      continue;
    }
    const auto& b = a.bbox;
    auto as_written = [&] {
      return detail::concat("bbox [", b[0], ", ", b[1], ", ", b[2], ", ", b[3], "] (x, y, w, h)");
    };
    if (!check_box_and_report({b[0], b[1], b[0] + b[2], b[1] + b[3]}, r.width, r.height, bad,
                              &instance.box, where, as_written)) {
      continue;
    }
    instance.label = label->second;
    instance.category_id = a.category_id;
    instance.iscrowd = a.iscrowd;
    if (options.load_segmentation) {
      const std::string degenerate = degenerate_polygon(a.segmentation);
      if (!degenerate.empty()) {
        bad.report(BadInput::kDegeneratePolygon, degenerate, where());
        continue;
      }
      const std::string problem = segmentation_problem(a.segmentation, r.width, r.height);
      if (!problem.empty()) {
        bad.report(BadInput::kInvalidSegmentation, problem, where());
        continue;
      }
      // Move the polygons out of a parse we own; copy otherwise.
      if (movable) {
        instance.segmentation = std::move(movable->annotations[k].segmentation);
      } else {
        instance.segmentation = a.segmentation;
      }
    }
    r.instances.push_back(std::move(instance));
  }

  dataset.records.reserve(records.size());
  for (auto& r : records) {
    if (options.filter_empty && r.instances.empty()) continue;
    dataset.records.push_back(std::move(r));
  }
  return dataset;
}

}  // namespace

Dataset coco_to_dataset(const evaluation::CocoDataset& coco, const std::string& where,
                        const CocoDatasetOptions& options) {
  return to_dataset(coco, nullptr, where, options);
}

namespace {

Dataset parse_padded(const simdjson::padded_string& padded, const std::string& where,
                     const CocoDatasetOptions& options) {
  evaluation::CocoParseOptions parse;
  parse.load_segmentation = options.load_segmentation;
  parse.max_image_pixels = options.max_image_pixels;
  evaluation::CocoDataset coco =
      evaluation::parse_coco_json(std::string_view(padded.data(), padded.size()), where, parse);
  return to_dataset(coco, &coco, where, options);
}

}  // namespace

Dataset parse_coco_dataset(std::string_view json, const std::string& where,
                           const CocoDatasetOptions& options) {
  return parse_padded(simdjson::padded_string(json), where, options);
}

Dataset load_coco_dataset(const std::string& json_path, const CocoDatasetOptions& options) {
  check_input_file(json_path, "the annotation file");
  simdjson::padded_string padded;
  if (simdjson::padded_string::load(json_path).get(padded) != simdjson::SUCCESS) {
    throw Error("cannot read the annotation file", json_path, "check that the path exists");
  }
  return parse_padded(padded, json_path, options);
}

}  // namespace largedet::data
