#include "largedet/evaluation/coco_json.h"

#include <simdjson.h>

#include <algorithm>
#include <unordered_map>

#include "json_util.h"
#include "largedet/core/error.h"
#include "largedet/core/file_io.h"

namespace largedet::evaluation {

using simdjson::ondemand::json_type;
using simdjson::ondemand::value;

Rle segmentation_to_rle(const Segmentation& s, uint32_t image_height, uint32_t image_width) {
  switch (s.kind) {
    case Segmentation::Kind::kPolygons: {
      if (s.polygons.empty()) return Rle{image_height, image_width, {image_height * image_width}};
      // pycocotools' frPyObjects reads a list whose first element has 4 numbers as boxes.
      const bool boxes = s.polygons[0].size() == 4;
      std::vector<Rle> parts;
      parts.reserve(s.polygons.size());
      for (const auto& xy : s.polygons) {
        if (boxes) {
          LARGEDET_CHECK(xy.size() == 4, "segmentation mixes boxes (4 numbers) and polygons");
          parts.push_back(rle_from_bbox({xy[0], xy[1], xy[2], xy[3]}, image_height, image_width));
        } else {
          parts.push_back(rle_from_polygon(xy, image_height, image_width));
        }
      }
      if (parts.size() == 1) return std::move(parts[0]);  // rle_merge would copy it
      return rle_merge(parts);
    }
    case Segmentation::Kind::kRle:
      return s.rle;
    case Segmentation::Kind::kCompressedRle:
      return rle_from_string(s.compressed, s.rle.h, s.rle.w);
    case Segmentation::Kind::kNone:
      break;
  }
  throw Error("annotation has no segmentation", "", "segm evaluation needs masks");
}

int64_t CocoDataset::image_index(int64_t image_id) const {
  auto it = image_index_.find(image_id);
  return it == image_index_.end() ? -1 : it->second;
}

int64_t CocoDataset::category_index(int64_t category_id) const {
  auto it = category_index_.find(category_id);
  return it == category_index_.end() ? -1 : it->second;
}

void CocoDataset::build_index() {
  image_index_.clear();
  image_index_.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    if (!image_index_.emplace(images[i].id, int64_t(i)).second) {
      throw Error(detail::concat("duplicate image id ", images[i].id),
                  detail::concat("images[", i, "]"), "image ids must be unique");
    }
  }
  category_index_.clear();
  for (size_t i = 0; i < categories.size(); ++i) {
    if (!category_index_.emplace(categories[i].id, int64_t(i)).second) {
      throw Error(detail::concat("duplicate category id ", categories[i].id),
                  detail::concat("categories[", i, "]"), "category ids must be unique");
    }
  }
}

namespace {

// Everything sized by an image (its masks' runs, the evaluator's walks over them) trusts its
// width and height: sizes that cannot be real are refused here, before anything else sees them.
void check_image_size(int64_t id, int64_t width, int64_t height, int64_t max_pixels) {
  if (width < 0 || height < 0) throw json::FieldError("negative width or height");
  if (std::max(width, height) > max_pixels || width * height > max_pixels) {
    throw json::FieldError(
        detail::concat("image id ", id, " claims ", width, " x ", height,
                       " pixels, more than the bound of ", max_pixels),
        "no real image has that size, the file may be corrupt; if the image is real, raise the "
        "bound: INPUT.MAX_IMAGE_PIXELS (training, largedet evaluate --config) or largedet "
        "evaluate --max-image-pixels");
  }
}

CocoImage parse_image(value entry, const CocoParseOptions& options) {
  CocoImage image;
  bool has_id = false;
  int64_t width = 0, height = 0;
  for (auto member : entry.get_object()) {
    std::string_view key = member.unescaped_key();
    if (key == "id") {
      image.id = json::get_integer(member.value(), "id");
      has_id = true;
    } else if (key == "file_name") {
      image.file_name = json::get_string(member.value(), "file_name");
    } else if (key == "width") {
      width = json::get_integer(member.value(), "width");
    } else if (key == "height") {
      height = json::get_integer(member.value(), "height");
    }
  }
  if (!has_id) throw json::FieldError("image has no \"id\"");
  check_image_size(image.id, width, height, options.max_image_pixels);
  image.width = int32_t(width);  // the bound is at most INT32_MAX
  image.height = int32_t(height);
  return image;
}

CocoAnnotation parse_annotation(value entry, const CocoParseOptions& options) {
  CocoAnnotation ann;
  bool has_image = false, has_category = false, has_area = false;
  for (auto member : entry.get_object()) {
    std::string_view key = member.unescaped_key();
    if (key == "id") {
      ann.id = json::get_integer(member.value(), "id");
      ann.has_id = true;
    } else if (key == "image_id") {
      ann.image_id = json::get_integer(member.value(), "image_id");
      has_image = true;
    } else if (key == "category_id") {
      ann.category_id = json::get_integer(member.value(), "category_id");
      has_category = true;
    } else if (key == "bbox") {
      ann.has_bbox = json::get_box(member.value(), "bbox", ann.bbox);
    } else if (key == "area") {
      ann.area = json::get_number(member.value(), "area");
      has_area = true;
    } else if (key == "iscrowd") {
      ann.iscrowd = json::get_flag(member.value(), "iscrowd");
    } else if (key == "segmentation" && options.load_segmentation) {
      ann.segmentation = json::get_segmentation(member.value());
    }
  }
  if (!has_image) throw json::FieldError("annotation has no \"image_id\"");
  if (!has_category) throw json::FieldError("annotation has no \"category_id\"");
  if (!has_area) ann.area = ann.bbox[2] * ann.bbox[3];
  return ann;
}

CocoCategory parse_category(value entry) {
  CocoCategory category;
  bool has_id = false;
  for (auto member : entry.get_object()) {
    std::string_view key = member.unescaped_key();
    if (key == "id") {
      category.id = json::get_integer(member.value(), "id");
      has_id = true;
    } else if (key == "name") {
      category.name = json::get_string(member.value(), "name");
    } else if (key == "supercategory") {
      if (member.value().type() == json_type::string) {
        category.supercategory = json::get_string(member.value(), "supercategory");
      }
    }
  }
  if (!has_id) throw json::FieldError("category has no \"id\"");
  return category;
}

// Parses every element of the array `array_value` with `parse`, naming the element on errors.
template <typename T, typename Parse>
void parse_entries(value array_value, const char* name, const std::string& where,
                   simdjson::ondemand::document& doc, const char* base, std::vector<T>& out,
                   Parse parse) {
  if (array_value.type() != json_type::array) {
    throw Error(detail::concat("\"", name, "\" must be an array"), where);
  }
  size_t index = 0;
  for (auto element : array_value.get_array()) {
    try {
      value entry = element.value();
      if (entry.type() != json_type::object) {
        throw json::FieldError(
            detail::concat("expected an object, found ", json::type_name(entry.type())));
      }
      out.push_back(parse(entry));
    } catch (const json::FieldError& e) {
      throw Error(e.what(), json::entry_location(where, name, index, doc, base), e.hint);
    } catch (const simdjson::simdjson_error& e) {
      throw Error(detail::concat("malformed JSON: ", e.what()),
                  json::entry_location(where, name, index, doc, base));
    }
    ++index;
  }
}

CocoDataset parse_padded(const simdjson::padded_string& json, const std::string& where,
                         const CocoParseOptions& options) {
  LARGEDET_CHECK(options.max_image_pixels > 0 && options.max_image_pixels <= kMaxImagePixelsLimit,
                 "max_image_pixels must be in 1..", kMaxImagePixelsLimit);
  CocoDataset dataset;
  dataset.source = where;
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  const char* base = json.data();
  // A first-stage failure (empty input, invalid UTF-8, an unclosed string) leaves no document to
  // ask for a location: report it before touching `doc` (found by tests/fuzz).
  if (auto error = parser.iterate(json).get(doc)) {
    throw Error(detail::concat("malformed JSON: ", simdjson::error_message(error)),
                where + " (near byte 0)", "the file is empty, truncated or not UTF-8 JSON");
  }
  try {
    if (doc.type() != json_type::object) {
      throw Error("a COCO annotation file must be a JSON object", where,
                  "expected {\"images\": [...], \"annotations\": [...], \"categories\": [...]}");
    }
    for (auto field : doc.get_object()) {
      std::string_view key = field.unescaped_key();
      if (key == "images") {
        parse_entries(field.value(), "images", where, doc, base, dataset.images,
                      [&](value v) { return parse_image(v, options); });
      } else if (key == "annotations") {
        parse_entries(field.value(), "annotations", where, doc, base, dataset.annotations,
                      [&](value v) { return parse_annotation(v, options); });
      } else if (key == "categories") {
        parse_entries(field.value(), "categories", where, doc, base, dataset.categories,
                      parse_category);
      }
    }
  } catch (const simdjson::simdjson_error& e) {
    std::string location = where;
    const char* at = nullptr;
    if (doc.current_location().get(at) == simdjson::SUCCESS && at >= base) {
      location += detail::concat(" (near byte ", at - base, ")");
    }
    throw Error(detail::concat("malformed JSON: ", e.what()), location);
  }
  try {
    dataset.build_index();
  } catch (const Error& e) {
    throw Error(e.message(), where + ": " + e.where(), e.hint());
  }
  // pycocotools indexes annotations by id and keeps the last of equal ids: scoring all of them
  // would give another AP than it does, and dropping some silently is no better.
  std::unordered_map<int64_t, size_t> first_with_id;
  for (size_t i = 0; i < dataset.annotations.size(); ++i) {
    const auto& a = dataset.annotations[i];
    if (!a.has_id) continue;
    auto [it, fresh] = first_with_id.emplace(a.id, i);
    if (!fresh) {
      throw Error(
          detail::concat("duplicate annotation id ", a.id),
          detail::concat(where, ": annotations[", i, "] (and annotations[", it->second, "])"),
          "annotation ids must be unique (pycocotools would keep only the last of them)");
    }
  }
  return dataset;
}

}  // namespace

CocoDataset parse_coco_json(std::string_view json, const std::string& where,
                            const CocoParseOptions& options) {
  simdjson::padded_string padded(json.data(), json.size());
  return parse_padded(padded, where, options);
}

CocoDataset load_coco_json(const std::string& path, const CocoParseOptions& options) {
  check_input_file(path, "the annotation file");
  simdjson::padded_string padded;
  if (simdjson::padded_string::load(path).get(padded) != simdjson::SUCCESS) {
    throw Error("cannot read the annotation file", path, "check that the path exists");
  }
  return parse_padded(padded, path, options);
}

}  // namespace largedet::evaluation
