// Mirrors object_detection/dataset_tools/oid_hierarchical_labels_expansion.py of the TF OD API:
// _build_plain_hierarchy(skip_root=True) gives each class the classes on the paths above its
// occurrences (its "keyed_child" set) and those below them (its "keyed_parent" set); rows are
// expanded one at a time, the label field replaced, the rest of the line kept.
#include "largedet/evaluation/openimages_hierarchy.h"

#include <simdjson.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <set>
#include <string_view>
#include <unordered_set>

#include "largedet/core/error.h"
#include "largedet/core/file_io.h"

namespace largedet::evaluation {
namespace {

const char* kHierarchyHint =
    "expected the challenge's hierarchy JSON (bbox_labels_600_hierarchy.json or "
    "challenge-2019-label500-hierarchy.json): nested {\"LabelName\": ..., \"Subcategory\": [...]}";

struct Builder {
  std::string where;
  std::unordered_map<std::string, std::pair<std::set<std::string>, std::set<std::string>>> sets;
  std::vector<std::string> path;  // the classes above the node being visited, root excluded

  std::string label_of(simdjson::dom::element node, const std::string& at) const {
    simdjson::dom::object object;
    if (node.get_object().get(object))
      throw Error("node " + at + " is not an object", where, kHierarchyHint);
    std::string_view label;
    if (object["LabelName"].get_string().get(label) || label.empty())
      throw Error("node " + at + " has no LabelName string", where, kHierarchyHint);
    return std::string(label);
  }

  void visit(simdjson::dom::element node, const std::string& at, bool root) {
    const std::string label = label_of(node, at);
    if (!root) {
      if (std::find(path.begin(), path.end(), label) != path.end())
        throw Error("class " + label + " appears below itself (node " + at + ")", where,
                    "the hierarchy must be a tree of distinct classes along each path");
      sets[label].first.insert(path.begin(), path.end());
      for (const std::string& above : path) sets[above].second.insert(label);
      path.push_back(label);
    }
    simdjson::dom::element children;
    if (node["Subcategory"].get(children) == simdjson::SUCCESS) {
      simdjson::dom::array list;
      if (children.get_array().get(list))
        throw Error("Subcategory of " + label + " is not a list", where, kHierarchyHint);
      size_t i = 0;
      for (simdjson::dom::element child : list)
        visit(child, at + ".Subcategory[" + std::to_string(i++) + "]", false);
    }
    if (!root) path.pop_back();
  }
};

// A line split at commas, as the official script splits it (no quoting in these files).
std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  size_t start = 0;
  for (size_t i = 0; i <= line.size(); ++i) {
    if (i == line.size() || line[i] == ',') {
      fields.push_back(line.substr(start, i - start));
      start = i + 1;
    }
  }
  return fields;
}

std::string join_with(const std::vector<std::string_view>& fields, size_t column,
                      std::string_view replacement) {
  std::string out;
  for (size_t i = 0; i < fields.size(); ++i) {
    if (i) out += ',';
    out += i == column ? replacement : fields[i];
  }
  return out;
}

size_t column_of(const std::vector<std::string_view>& header, std::string_view name,
                 const std::string& where) {
  auto it = std::find(header.begin(), header.end(), name);
  if (it == header.end())
    throw Error("the CSV header has no column \"" + std::string(name) + "\"", where + ":1",
                "expected the OpenImages challenge format");
  return size_t(it - header.begin());
}

}  // namespace

OidHierarchy OidHierarchy::from_json(const std::string& text, const std::string& where) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (auto error = parser.parse(text).get(root))
    throw Error(std::string("not valid JSON: ") + simdjson::error_message(error), where,
                kHierarchyHint);
  Builder builder{where, {}, {}};
  builder.visit(root, "root", true);
  OidHierarchy hierarchy;
  hierarchy.source_ = where;
  for (auto& [label, sets] : builder.sets) {
    Node& node = hierarchy.nodes_[label];
    node.ancestors.assign(sets.first.begin(), sets.first.end());
    node.descendants.assign(sets.second.begin(), sets.second.end());
  }
  if (hierarchy.nodes_.empty())
    throw Error("the hierarchy has no class below its root", where, kHierarchyHint);
  return hierarchy;
}

OidHierarchy OidHierarchy::from_json_file(const std::string& path) {
  return from_json(read_file(path), path);
}

const std::vector<std::string>& OidHierarchy::ancestors(const std::string& label) const {
  static const std::vector<std::string> kNone;
  auto it = nodes_.find(label);
  return it == nodes_.end() ? kNone : it->second.ancestors;
}

const std::vector<std::string>& OidHierarchy::descendants(const std::string& label) const {
  static const std::vector<std::string> kNone;
  auto it = nodes_.find(label);
  return it == nodes_.end() ? kNone : it->second.descendants;
}

const std::vector<std::string>& OidHierarchy::expansion(const std::string& label, bool negative,
                                                        const std::string& where) const {
  auto it = nodes_.find(label);
  if (it == nodes_.end()) {
    throw Error("class " + label + " is not in the hierarchy " + source_, where,
                "use the hierarchy file of the same dataset version as the annotations (the "
                "root class itself cannot be annotated)");
  }
  return negative ? it->second.descendants : it->second.ancestors;
}

std::string OidExpansionReport::summary() const {
  if (already_expanded)
    return std::to_string(rows_read) +
           " rows already expanded along the hierarchy; kept as they are";
  return std::to_string(rows_read) + " rows expanded along the hierarchy to " +
         std::to_string(rows_read + rows_added);
}

std::string expand_oid_csv(const std::string& text, OidCsvKind kind, const OidHierarchy& hierarchy,
                           const std::string& where, OidExpansionReport* report) {
  std::vector<std::string_view> lines;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  if (lines.empty() || lines[0].empty()) throw Error("the CSV file is empty", where);
  const auto header = split_fields(lines[0]);
  const size_t label_column = column_of(header, "LabelName", where);
  const bool labels = kind == OidCsvKind::kImageLabels;
  const size_t confidence_column = labels ? column_of(header, "Confidence", where) : 0;

  struct Row {
    size_t line;
    std::vector<std::string_view> fields;
    const std::vector<std::string>* copies;
  };
  std::vector<Row> rows;
  std::unordered_set<size_t> seen;  // hashes of the rows, for the already-expanded check
  const std::hash<std::string_view> hash;
  for (size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) continue;
    const std::string at = where + ":" + std::to_string(i + 1);
    auto fields = split_fields(lines[i]);
    if (fields.size() != header.size())
      throw Error("has " + std::to_string(fields.size()) + " fields, the header has " +
                      std::to_string(header.size()),
                  at);
    bool negative = false;
    if (labels) {
      const std::string confidence(fields[confidence_column]);
      char* end = nullptr;
      errno = 0;
      const double value = std::strtod(confidence.c_str(), &end);
      if (confidence.empty() || *end != '\0' || !std::isfinite(value))
        throw Error("column Confidence is not a number: \"" + confidence + "\"", at);
      negative = value <= 0;
    }
    const auto& copies = hierarchy.expansion(std::string(fields[label_column]), negative, at);
    seen.insert(hash(lines[i]));
    rows.push_back({i, std::move(fields), &copies});
  }

  size_t expandable = 0, covered = 0, added = 0;
  for (const Row& row : rows) {
    if (row.copies->empty()) continue;
    ++expandable;
    added += row.copies->size();
    bool all = true;
    for (const std::string& label : *row.copies)
      all = all && seen.count(hash(join_with(row.fields, label_column, label)));
    covered += all;
  }
  const bool already = expandable > 0 && covered == expandable;

  std::string out(lines[0]);
  out += '\n';
  for (const Row& row : rows) {
    out += lines[row.line];
    out += '\n';
    if (already) continue;
    for (const std::string& label : *row.copies) {
      out += join_with(row.fields, label_column, label);
      out += '\n';
    }
  }
  if (report) *report = {rows.size(), already ? 0 : added, already};
  return out;
}

}  // namespace largedet::evaluation
