// Internal helpers for the simdjson On-Demand readers of this layer (COCO annotations and
// results): typed field access with messages that name the field and what was found.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "largedet/evaluation/coco_json.h"

namespace largedet::evaluation::json {

// Thrown by the helpers; the entry loops turn it into a largedet::Error naming the entry.
struct FieldError : std::runtime_error {
  explicit FieldError(const std::string& what, std::string hint = "")
      : std::runtime_error(what), hint(std::move(hint)) {}
  std::string hint;  // the largedet::Error's hint
};

const char* type_name(simdjson::ondemand::json_type type);

// An integer id; integral floating-point numbers (1.0) are accepted.
int64_t get_integer(simdjson::ondemand::value value, const char* field);
// A finite number.
double get_number(simdjson::ondemand::value value, const char* field);
// 0/1 or false/true.
bool get_flag(simdjson::ondemand::value value, const char* field);
std::string get_string(simdjson::ondemand::value value, const char* field);
// [x, y, w, h]; `allow_empty` accepts [] (returns false then).
bool get_box(simdjson::ondemand::value value, const char* field, BoxXywh& box);
// Polygons, uncompressed RLE or compressed RLE.
Segmentation get_segmentation(simdjson::ondemand::value value);

// "path: annotations[12] (byte 3456)"; the byte offset is where the parser stood when the entry
// failed, or omitted when unknown.
std::string entry_location(const std::string& where, const char* array, size_t index,
                           simdjson::ondemand::document& doc, const char* base);

}  // namespace largedet::evaluation::json
