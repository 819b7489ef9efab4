// The OpenImages challenge CSV files. Columns are looked up by header name, so files with extra
// columns (IsOccluded, Source, ...) or another order read the same. No quoted fields occur in
// these files; a quote is rejected rather than misread.
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"
#include "largedet/core/logging.h"
#include "largedet/evaluation/openimages_eval.h"
#include "largedet/evaluation/openimages_hierarchy.h"

namespace largedet::evaluation {
namespace {

class CsvReader {
 public:
  // `name` says where the text came from in messages (a path, "detections from rank 1").
  CsvReader(std::istream& in, std::string name, const std::vector<std::string>& required)
      : path_(std::move(name)), in_(in) {
    const std::string& path = path_;
    std::string header;
    if (!std::getline(in_, header)) throw Error("the CSV file is empty", path);
    ++line_;
    // Spreadsheet exports: a UTF-8 byte order mark and Windows line ends.
    if (header.rfind("\xEF\xBB\xBF", 0) == 0) header.erase(0, 3);
    if (!header.empty() && header.back() == '\r') header.pop_back();
    if (!header.empty() && (header[0] == '{' || header[0] == '[')) {
      throw Error("this is JSON, not an OpenImages CSV file", path,
                  "--type oid reads the challenge's CSV files; use --type bbox or segm for COCO");
    }
    split(header);
    for (size_t i = 0; i < fields_.size(); ++i) columns_[fields_[i]] = i;
    for (const auto& name : required) {
      if (!columns_.count(name)) {
        throw Error("the CSV header has no column \"" + name + "\"", path + ":1",
                    "expected the OpenImages challenge format");
      }
    }
  }

  bool next() {
    std::string row;
    while (std::getline(in_, row)) {
      ++line_;
      if (!row.empty() && row.back() == '\r') row.pop_back();
      if (row.empty()) continue;
      split(row);
      if (fields_.size() < columns_.size())
        fail("has " + std::to_string(fields_.size()) + " fields, the header has " +
             std::to_string(columns_.size()));
      return true;
    }
    return false;
  }

  const std::string& text(const std::string& column) const { return fields_[columns_.at(column)]; }

  double number(const std::string& column) const {
    const std::string& s = text(column);
    char* end = nullptr;
    errno = 0;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v)) {
      fail("column " + column + " is not a finite number: \"" + s + "\"");
    }
    return v;
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(what, path_ + ":" + std::to_string(line_));
  }

 private:
  void split(const std::string& row) {
    if (row.find('"') != std::string::npos) fail("quoted CSV fields are not supported");
    fields_.clear();
    size_t start = 0;
    for (size_t i = 0; i <= row.size(); ++i) {
      if (i == row.size() || row[i] == ',') {
        fields_.push_back(row.substr(start, i - start));
        start = i + 1;
      }
    }
  }

  std::string path_;
  std::istream& in_;
  size_t line_ = 0;
  std::vector<std::string> fields_;
  std::unordered_map<std::string, size_t> columns_;
};

std::ifstream open_csv(const std::string& path) {
  check_input_file(path, "the CSV file");
  std::ifstream in(path);
  if (!in) throw Error("cannot open the CSV file", path, "check the path");
  return in;
}

// The columns a ground-truth box and a detection share.
template <typename Row>
Row read_labelled_box(const CsvReader& csv) {
  Row row;
  row.image_id = csv.text("ImageID");
  row.label = csv.text("LabelName");
  row.xmin = csv.number("XMin");
  row.xmax = csv.number("XMax");
  row.ymin = csv.number("YMin");
  row.ymax = csv.number("YMax");
  return row;
}

std::vector<OidDetection> read_detections(std::istream& in, const std::string& name) {
  CsvReader csv(in, name, {"ImageID", "LabelName", "Score", "XMin", "YMin", "XMax", "YMax"});
  std::vector<OidDetection> dets;
  while (csv.next()) {
    auto d = read_labelled_box<OidDetection>(csv);
    d.score = csv.number("Score");
    dets.push_back(std::move(d));
  }
  return dets;
}

std::vector<OidBox> read_boxes(std::istream& in, const std::string& name) {
  CsvReader csv(in, name, {"ImageID", "LabelName", "XMin", "XMax", "YMin", "YMax", "IsGroupOf"});
  std::vector<OidBox> boxes;
  while (csv.next()) {
    auto b = read_labelled_box<OidBox>(csv);
    b.is_group_of = csv.number("IsGroupOf") != 0;
    if (b.xmax < b.xmin || b.ymax < b.ymin) csv.fail("box has XMax < XMin or YMax < YMin");
    boxes.push_back(std::move(b));
  }
  return boxes;
}

std::vector<OidImageLabel> read_image_labels(std::istream& in, const std::string& name) {
  CsvReader csv(in, name, {"ImageID", "LabelName", "Confidence"});
  std::vector<OidImageLabel> labels;
  while (csv.next()) {
    labels.push_back({csv.text("ImageID"), csv.text("LabelName"), csv.number("Confidence") > 0});
  }
  return labels;
}

// One CSV line into fields; double quotes may enclose a field ("" is a literal quote).
std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
        fields.back() += '"';
        ++i;
      } else if (c == '"') {
        quoted = false;
      } else {
        fields.back() += c;
      }
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      fields.emplace_back();
    } else if (c != '\r') {
      fields.back() += c;
    }
  }
  return fields;
}

std::string format_double(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.17g", v);
  return buffer;
}

}  // namespace

std::vector<OidBox> load_oid_boxes_csv(const std::string& path) {
  auto in = open_csv(path);
  return read_boxes(in, path);
}

std::vector<OidImageLabel> load_oid_image_labels_csv(const std::string& path) {
  auto in = open_csv(path);
  return read_image_labels(in, path);
}

std::vector<OidBox> parse_oid_boxes_csv(const std::string& text, const std::string& where) {
  std::istringstream in(text);
  return read_boxes(in, where);
}

std::vector<OidImageLabel> parse_oid_image_labels_csv(const std::string& text,
                                                      const std::string& where) {
  std::istringstream in(text);
  return read_image_labels(in, where);
}

OidGroundTruth load_oid_ground_truth(const std::string& boxes_csv,
                                     const std::string& image_labels_csv,
                                     const std::string& hierarchy_json) {
  OidGroundTruth gt;
  if (hierarchy_json.empty()) {
    gt.boxes = load_oid_boxes_csv(boxes_csv);
    if (!image_labels_csv.empty()) gt.image_labels = load_oid_image_labels_csv(image_labels_csv);
    return gt;
  }
  const OidHierarchy hierarchy = OidHierarchy::from_json_file(hierarchy_json);
  auto expanded = [&](const std::string& path, OidCsvKind kind) {
    OidExpansionReport report;
    std::string text = expand_oid_csv(read_file(path), kind, hierarchy, path, &report);
    log::info() << path << ": " << report.summary();
    return text;
  };
  gt.boxes = parse_oid_boxes_csv(expanded(boxes_csv, OidCsvKind::kBoxes), boxes_csv);
  if (!image_labels_csv.empty()) {
    gt.image_labels = parse_oid_image_labels_csv(
        expanded(image_labels_csv, OidCsvKind::kImageLabels), image_labels_csv);
  }
  return gt;
}

std::vector<OidClass> load_oid_class_descriptions(const std::string& path) {
  check_input_file(path, "the class descriptions");
  std::ifstream in(path);
  if (!in) {
    throw Error("cannot open the class descriptions", path,
                "pass class-descriptions-boxable.csv (MID,Name per line)");
  }
  std::vector<OidClass> classes;
  std::unordered_set<std::string> seen;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (n == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // a byte order mark
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    auto fields = split_csv(line);
    if (fields.size() < 2 || fields[0].empty())
      throw Error("a class description needs MID,Name", path + ":" + std::to_string(n));
    if (!seen.insert(fields[0]).second)
      throw Error("duplicate class " + fields[0], path + ":" + std::to_string(n));
    classes.push_back({fields[0], fields[1]});
  }
  return classes;
}

std::vector<OidDetection> load_oid_detections_csv(const std::string& path) {
  auto in = open_csv(path);
  return read_detections(in, path);
}

std::vector<OidDetection> parse_oid_detections_csv(const std::string& text,
                                                   const std::string& where) {
  std::istringstream in(text);
  return read_detections(in, where);
}

std::string oid_detections_to_csv(const std::vector<OidDetection>& detections) {
  std::string text = "ImageID,LabelName,Score,XMin,YMin,XMax,YMax\n";
  for (const auto& d : detections) {
    text += d.image_id + "," + d.label + "," + format_double(d.score) + "," +
            format_double(d.xmin) + "," + format_double(d.ymin) + "," + format_double(d.xmax) +
            "," + format_double(d.ymax) + "\n";
  }
  return text;
}

}  // namespace largedet::evaluation
