#include "json_util.h"

#include <cmath>

#include "largedet/core/error.h"

namespace largedet::evaluation::json {

using simdjson::ondemand::json_type;
using simdjson::ondemand::value;

namespace {

[[noreturn]] void wrong_type(const char* field, const char* expected, json_type found) {
  throw FieldError(
      detail::concat("field \"", field, "\" must be ", expected, ", found ", type_name(found)));
}

}  // namespace

const char* type_name(json_type type) {
  switch (type) {
    case json_type::array:
      return "an array";
    case json_type::object:
      return "an object";
    case json_type::number:
      return "a number";
    case json_type::string:
      return "a string";
    case json_type::boolean:
      return "a boolean";
    case json_type::null:
      return "null";
  }
  return "something else";
}

int64_t get_integer(value v, const char* field) {
  json_type type = v.type();
  if (type != json_type::number) wrong_type(field, "an integer", type);
  simdjson::ondemand::number n = v.get_number();
  if (n.is_int64()) return n.get_int64();
  if (n.is_uint64()) throw FieldError(detail::concat("field \"", field, "\" is too large"));
  double d = n.get_double();
  if (std::floor(d) != d || std::fabs(d) > 9007199254740992.0) {
    throw FieldError(detail::concat("field \"", field, "\" must be an integer, found ", d));
  }
  return int64_t(d);
}

double get_number(value v, const char* field) {
  json_type type = v.type();
  if (type != json_type::number) wrong_type(field, "a number", type);
  double d = v.get_double();
  if (!std::isfinite(d)) throw FieldError(detail::concat("field \"", field, "\" is not finite"));
  return d;
}

bool get_flag(value v, const char* field) {
  json_type type = v.type();
  if (type == json_type::boolean) return v.get_bool();
  if (type == json_type::number) return get_number(v, field) != 0;
  wrong_type(field, "0/1 or a boolean", type);
}

std::string get_string(value v, const char* field) {
  json_type type = v.type();
  if (type != json_type::string) wrong_type(field, "a string", type);
  return std::string(std::string_view(v.get_string()));
}

bool get_box(value v, const char* field, BoxXywh& box) {
  json_type type = v.type();
  if (type != json_type::array) wrong_type(field, "an array [x, y, width, height]", type);
  size_t n = 0;
  for (value x : v.get_array()) {
    if (n >= 4) throw FieldError(detail::concat("field \"", field, "\" has more than 4 numbers"));
    box[n++] = get_number(x, field);
  }
  if (n == 0) return false;
  if (n != 4) throw FieldError(detail::concat("field \"", field, "\" has ", n, " numbers, not 4"));
  return true;
}

namespace {

void get_size(value v, Rle& rle) {
  json_type type = v.type();
  if (type != json_type::array) wrong_type("segmentation.size", "an array [height, width]", type);
  int64_t hw[2] = {0, 0};
  size_t n = 0;
  for (value x : v.get_array()) {
    if (n >= 2) throw FieldError("field \"segmentation.size\" has more than 2 numbers");
    hw[n++] = get_integer(x, "segmentation.size");
  }
  if (n != 2 || hw[0] < 0 || hw[1] < 0 || hw[0] > INT32_MAX || hw[1] > INT32_MAX) {
    throw FieldError("field \"segmentation.size\" must be [height, width], two integers >= 0");
  }
  rle.h = uint32_t(hw[0]);
  rle.w = uint32_t(hw[1]);
}

}  // namespace

Segmentation get_segmentation(value v) {
  Segmentation s;
  json_type type = v.type();
  if (type == json_type::array) {
    s.kind = Segmentation::Kind::kPolygons;
    for (value polygon : v.get_array()) {
      json_type ptype = polygon.type();
      if (ptype != json_type::array) wrong_type("segmentation[]", "an array of numbers", ptype);
      std::vector<double> xy;
      xy.reserve(32);
      // The hot loop of a 450 MB train2017 file: get_double straight away, no type() probe.
      for (value x : polygon.get_array()) {
        double d;
        if (x.get_double().get(d) != simdjson::SUCCESS || !std::isfinite(d)) {
          throw FieldError(
              "field \"segmentation\" has a polygon entry that is not a finite number");
        }
        xy.push_back(d);
      }
      s.polygons.push_back(std::move(xy));
    }
    return s;
  }
  if (type != json_type::object) {
    wrong_type("segmentation", "polygons or an RLE object {\"size\", \"counts\"}", type);
  }
  bool has_size = false, has_counts = false;
  for (auto member : v.get_object()) {
    std::string_view key = member.unescaped_key();
    if (key == "size") {
      get_size(member.value(), s.rle);
      has_size = true;
    } else if (key == "counts") {
      value counts = member.value();
      json_type ctype = counts.type();
      if (ctype == json_type::string) {
        s.kind = Segmentation::Kind::kCompressedRle;
        s.compressed = std::string(std::string_view(counts.get_string()));
      } else if (ctype == json_type::array) {
        s.kind = Segmentation::Kind::kRle;
        for (value c : counts.get_array()) {
          int64_t run = get_integer(c, "segmentation.counts");
          if (run < 0 || run > int64_t(UINT32_MAX)) {
            throw FieldError("field \"segmentation.counts\" has a run outside 0..2^32-1");
          }
          s.rle.counts.push_back(uint32_t(run));
        }
      } else {
        wrong_type("segmentation.counts", "a string or an array of integers", ctype);
      }
      has_counts = true;
    }
  }
  if (!has_size || !has_counts) {
    throw FieldError("field \"segmentation\" is an object without \"size\" and \"counts\"");
  }
  if (s.kind == Segmentation::Kind::kRle) {
    uint64_t total = 0;
    for (uint32_t c : s.rle.counts) total += c;
    if (total != uint64_t(s.rle.h) * s.rle.w) {
      throw FieldError(detail::concat("field \"segmentation.counts\" sums to ", total,
                                      " pixels, but \"size\" is [", s.rle.h, ", ", s.rle.w, "]"));
    }
  }
  return s;
}

std::string entry_location(const std::string& where, const char* array, size_t index,
                           simdjson::ondemand::document& doc, const char* base) {
  std::string location = detail::concat(where, ": ", array, "[", index, "]");
  const char* at = nullptr;
  if (doc.current_location().get(at) == simdjson::SUCCESS && at >= base) {
    location += detail::concat(" (near byte ", at - base, ")");
  }
  return location;
}

}  // namespace largedet::evaluation::json
