#include "largedet/evaluation/results.h"

#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iterator>

#include "json_util.h"
#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/core/threads.h"
#include "parallel.h"

namespace largedet::evaluation {

using simdjson::ondemand::json_type;
using simdjson::ondemand::value;

namespace {

// What pycocotools' loadRes decides from the first entry: boxes (area = w * h for all) or masks
// (area = the mask's area).
enum class ResultKind { kUnknown, kBoxes, kMasks };

Detection parse_detection(value entry, const CocoDataset& gt, ResultKind& kind) {
  Detection det;
  bool has_image = false, has_category = false, has_score = false;
  for (auto member : entry.get_object()) {
    std::string_view key = member.unescaped_key();
    if (key == "image_id") {
      det.image_id = json::get_integer(member.value(), "image_id");
      has_image = true;
    } else if (key == "category_id") {
      det.category_id = json::get_integer(member.value(), "category_id");
      has_category = true;
    } else if (key == "score") {
      det.score = json::get_number(member.value(), "score");
      has_score = true;
    } else if (key == "bbox") {
      det.has_bbox = json::get_box(member.value(), "bbox", det.bbox);
    } else if (key == "segmentation") {
      det.segmentation = json::get_segmentation(member.value());
    }
  }
  if (!has_image) throw json::FieldError("result has no \"image_id\"");
  if (!has_category) throw json::FieldError("result has no \"category_id\"");
  if (!has_score) throw json::FieldError("result has no \"score\"");
  const int64_t image = gt.image_index(det.image_id);
  if (image < 0) {
    throw json::FieldError(
        detail::concat("image_id ", det.image_id, " is not an image of the ground truth"));
  }
  if (gt.category_index(det.category_id) < 0) {
    throw json::FieldError(
        detail::concat("category_id ", det.category_id, " is not a category of the ground truth"));
  }
  if (det.has_bbox && (det.bbox[2] < 0 || det.bbox[3] < 0)) {
    throw json::FieldError("\"bbox\" has a negative width or height (expected [x, y, w, h])");
  }
  if (kind == ResultKind::kUnknown) {
    if (det.has_bbox)
      kind = ResultKind::kBoxes;
    else if (!det.segmentation.empty())
      kind = ResultKind::kMasks;
    else
      throw json::FieldError("result has neither \"bbox\" nor \"segmentation\"");
  }
  const CocoImage& img = gt.images[size_t(image)];
  if (!det.segmentation.empty() && det.segmentation.kind != Segmentation::Kind::kPolygons) {
    const Rle& size = det.segmentation.rle;
    if (int64_t(size.h) != img.height || int64_t(size.w) != img.width) {
      throw json::FieldError(detail::concat("mask size [", size.h, ", ", size.w,
                                            "] differs from image ", img.id, "'s [", img.height,
                                            ", ", img.width, "]"));
    }
  }
  if (kind == ResultKind::kBoxes) {
    if (!det.has_bbox) {
      throw json::FieldError("result has no \"bbox\", but results[0] has one: all or none");
    }
    det.area = det.bbox[2] * det.bbox[3];
  } else if (det.segmentation.empty()) {
    throw json::FieldError(
        "result has no \"segmentation\", but results[0] is a mask result: all or none");
  }
  return det;
}

// Decodes a result's mask once, as it is read (the evaluator needs the runs anyway), so that a bad
// mask is reported with its entry. pycocotools' loadRes: a mask result's area is its mask's (its
// missing bbox, the mask's box, is left to the evaluator: most masks never meet a ground truth).
void decode_mask(Detection& det, const CocoImage& img, bool masks) {
  Rle rle = segmentation_to_rle(det.segmentation, uint32_t(img.height), uint32_t(img.width));
  if (masks) det.area = double(rle_area(rle));
  det.segmentation.kind = Segmentation::Kind::kRle;
  det.segmentation.polygons.clear();
  det.segmentation.compressed.clear();
  det.segmentation.rle = std::move(rle);
}

}  // namespace

Detection box_detection(int64_t image_id, int64_t category_id, double score, double x1, double y1,
                        double x2, double y2) {
  Detection det;
  det.image_id = image_id;
  det.category_id = category_id;
  det.score = score;
  det.bbox = {x1, y1, x2 - x1, y2 - y1};
  det.has_bbox = true;
  return det;
}

namespace {

// Parses the JSON array in `padded` into `out`, masks decoded. `kind` is results[0]'s (unknown
// for the part that holds it). Errors number entries from the part's start: a part's error is
// never shown, since the whole file is then parsed again in one piece.
void parse_array(const simdjson::padded_string& padded, const CocoDataset& gt,
                 const std::string& where, ResultKind& kind, std::vector<Detection>& out) {
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  const char* base = padded.data();
  size_t index = 0;
  bool in_array = false;  // the document has no position to report before that
  try {
    doc = parser.iterate(padded);
    if (doc.type() != json_type::array) {
      throw Error(
          "a COCO results file must be a JSON array", where,
          "expected [{\"image_id\", \"category_id\", \"score\", \"bbox\"|\"segmentation\"}]");
    }
    auto entries = doc.get_array();
    in_array = true;
    for (auto element : entries) {
      try {
        value entry = element.value();
        if (entry.type() != json_type::object) {
          throw json::FieldError(
              detail::concat("expected an object, found ", json::type_name(entry.type())));
        }
        Detection det = parse_detection(entry, gt, kind);
        if (!det.segmentation.empty()) {
          try {
            decode_mask(det, gt.images[size_t(gt.image_index(det.image_id))],
                        kind == ResultKind::kMasks);
          } catch (const Error& e) {
            throw json::FieldError(detail::concat("\"segmentation\": ", e.message()));
          }
        }
        out.push_back(std::move(det));
      } catch (const json::FieldError& e) {
        throw Error(e.what(), json::entry_location(where, "results", index, doc, base), e.hint);
      }
      ++index;
    }
  } catch (const simdjson::simdjson_error& e) {
    throw Error(detail::concat("malformed JSON: ", e.what()),
                in_array ? json::entry_location(where, "results", index, doc, base) : where,
                "a results file is a JSON array of detections; NaN and Infinity are not JSON "
                "numbers, write finite scores");
  }
}

// Cuts a results array into `parts` runs of whole entries (the first run: results[0] alone, whose
// kind the others need), as [begin, end) offsets of their text without the brackets. A cut is a
// ',' between a '}' and a '{' (whitespace aside); one that falls inside a string or a nested
// value leaves a part that does not parse, and the caller then parses the file in one piece.
std::vector<std::pair<size_t, size_t>> cut_entries(std::string_view json, size_t parts) {
  constexpr const char* kSpace = " \t\r\n";
  const size_t open = json.find_first_not_of(kSpace), close = json.find_last_not_of(kSpace);
  if (open == std::string_view::npos || json[open] != '[' || json[close] != ']') return {};
  auto cut_after = [&](size_t from) {
    for (size_t i = json.find(',', from); i < close; i = json.find(',', i + 1)) {
      const size_t a = json.find_last_not_of(kSpace, i - 1),
                   b = json.find_first_not_of(kSpace, i + 1);
      if (json[a] == '}' && b < close && json[b] == '{') return i;
    }
    return close;
  };
  std::vector<std::pair<size_t, size_t>> runs;
  size_t begin = open + 1, end = cut_after(begin);
  runs.emplace_back(begin, end);
  const size_t rest = end;
  for (size_t k = 1; k <= parts && end < close; ++k) {
    begin = end + 1;
    end = k == parts ? close : cut_after(std::max(begin, rest + (close - rest) * k / parts));
    if (end > begin) runs.emplace_back(begin, end);
  }
  return runs;
}

// Files this large are parsed in parts on every thread: the JSON pass was most of a results file's
// reading time once masks decoded in parallel.
constexpr size_t kParallelBytes = size_t(1) << 20;

std::vector<Detection> parse_in_parts(std::string_view json, const CocoDataset& gt,
                                      const std::string& where, int threads) {
  const auto runs = cut_entries(json, size_t(threads) * 4);
  if (runs.size() < 2) return {};
  auto padded_part = [&](const std::pair<size_t, size_t>& run) {
    const size_t length = run.second - run.first;
    simdjson::padded_string text(length + 2);
    text.data()[0] = '[';
    std::memcpy(text.data() + 1, json.data() + run.first, length);
    text.data()[length + 1] = ']';
    return text;
  };
  std::vector<std::vector<Detection>> parts(runs.size());
  ResultKind kind = ResultKind::kUnknown;
  parse_array(padded_part(runs[0]), gt, where, kind, parts[0]);
  // results[0]'s length estimates the others': one allocation per part instead of a doubling
  // series (what is reserved beyond the need is never touched, so never made resident).
  const size_t entry_bytes = std::max<size_t>(runs[0].second - runs[0].first, 32);
  parallel_for(runs.size() - 1, threads, [&](size_t i) {
    ResultKind part_kind = kind;
    const auto& run = runs[i + 1];
    parts[i + 1].reserve((run.second - run.first) / entry_bytes * 5 / 4 + 16);
    parse_array(padded_part(run), gt, where, part_kind, parts[i + 1]);
  });
  std::vector<Detection> detections;
  size_t total = 0;
  for (const auto& part : parts) total += part.size();
  detections.reserve(total);
  for (auto& part : parts) std::move(part.begin(), part.end(), std::back_inserter(detections));
  return detections;
}

}  // namespace

std::vector<Detection> parse_coco_results(std::string_view json, const CocoDataset& gt,
                                          const std::string& where, int threads) {
  const int workers = threads > 0 ? threads : usable_cores();
  if (workers > 1 && json.size() >= kParallelBytes) {
    try {
      auto detections = parse_in_parts(json, gt, where, workers);
      if (!detections.empty()) return detections;
    } catch (const Error&) {
      // A bad entry, or a cut inside a string: the whole file, in one piece, says which.
    }
  }
  std::vector<Detection> detections;
  ResultKind kind = ResultKind::kUnknown;
  parse_array(simdjson::padded_string(json.data(), json.size()), gt, where, kind, detections);
  return detections;
}

std::vector<Detection> load_coco_results(const std::string& path, const CocoDataset& gt,
                                         int threads) {
  return parse_coco_results(read_file(path), gt, path, threads);
}

namespace {

void append_number(std::string& out, double x) {
  char buffer[32];
  int n = std::snprintf(buffer, sizeof buffer, "%.17g", x);
  out.append(buffer, size_t(n));
}

void append_segmentation(std::string& out, const Detection& det, const CocoDataset* gt) {
  const Segmentation& s = det.segmentation;
  if (s.kind == Segmentation::Kind::kPolygons && gt == nullptr) {
    out += "[";
    for (size_t p = 0; p < s.polygons.size(); ++p) {
      out += p ? ",[" : "[";
      for (size_t i = 0; i < s.polygons[p].size(); ++i) {
        if (i) out += ",";
        append_number(out, s.polygons[p][i]);
      }
      out += "]";
    }
    out += "]";
    return;
  }
  Rle rle;
  if (s.kind == Segmentation::Kind::kCompressedRle) {
    rle.h = s.rle.h;
    rle.w = s.rle.w;
  } else if (s.kind == Segmentation::Kind::kRle) {
    rle = s.rle;
  } else {
    int64_t image = gt->image_index(det.image_id);
    LARGEDET_CHECK(image >= 0, "detection of unknown image ", det.image_id);
    const CocoImage& img = gt->images[size_t(image)];
    rle = segmentation_to_rle(s, uint32_t(img.height), uint32_t(img.width));
  }
  const std::string counts =
      s.kind == Segmentation::Kind::kCompressedRle ? s.compressed : rle_to_string(rle);
  out += "{\"size\":[" + std::to_string(rle.h) + "," + std::to_string(rle.w) + "],\"counts\":\"";
  for (char c : counts) {
    if (c == '\\') out += '\\';  // '\' is one of the 64 code characters
    out += c;
  }
  out += "\"}";
}

}  // namespace

std::string coco_results_to_json(const std::vector<Detection>& detections, const CocoDataset* gt) {
  std::string out = "[";
  for (size_t i = 0; i < detections.size(); ++i) {
    const Detection& det = detections[i];
    if (i) out += ",\n";
    out += "{\"image_id\":" + std::to_string(det.image_id) +
           ",\"category_id\":" + std::to_string(det.category_id) + ",\"score\":";
    append_number(out, det.score);
    if (det.has_bbox) {
      out += ",\"bbox\":[";
      for (int k = 0; k < 4; ++k) {
        if (k) out += ",";
        append_number(out, det.bbox[k]);
      }
      out += "]";
    }
    if (!det.segmentation.empty()) {
      out += ",\"segmentation\":";
      append_segmentation(out, det, gt);
    }
    out += "}";
  }
  out += "]\n";
  return out;
}

void save_coco_results(const std::string& path, const std::vector<Detection>& detections,
                       const CocoDataset* gt) {
  write_file_atomic(path, coco_results_to_json(detections, gt));
}

}  // namespace largedet::evaluation
