// The OpenImages class hierarchy (bbox_labels_600_hierarchy.json for V4-V6,
// challenge-2019-label500-hierarchy.json for the challenge) and the expansion of ground truth
// along it, as the TF Object Detection API's oid_hierarchical_labels_expansion.py performs it
// before scoring: a box is copied to every ancestor class, a positive image-level label to every
// ancestor, a negative one to every descendant. docs/evaluation.md gives the rules in full.
#pragma once

#include <string>
#include <unordered_map>
#include <vector>

namespace largedet::evaluation {

class OidHierarchy {
 public:
  // The JSON tree: nested {"LabelName": MID, "Subcategory": [...]}. As in the official script,
  // the root (Entity) is no class of its own (nobody's ancestor, and it has no descendants) and
  // "Part" lists are not part of the tree. A class under several parents has the ancestors of
  // each. Errors name the file and the node.
  static OidHierarchy from_json(const std::string& text, const std::string& where);
  static OidHierarchy from_json_file(const std::string& path);

  bool contains(const std::string& label) const { return nodes_.count(label) != 0; }
  // Sorted, without duplicates; empty for classes outside the tree.
  const std::vector<std::string>& ancestors(const std::string& label) const;
  const std::vector<std::string>& descendants(const std::string& label) const;
  // The labels an annotation of `label` expands to, itself excluded: ancestors for boxes and
  // positive image-level labels, descendants for negative ones. Throws for labels outside the tree
  // (the official script asserts there), naming `where` and saying what to do.
  const std::vector<std::string>& expansion(const std::string& label, bool negative,
                                            const std::string& where) const;
  size_t size() const { return nodes_.size(); }
  const std::string& source() const { return source_; }

 private:
  struct Node {
    std::vector<std::string> ancestors, descendants;
  };
  std::string source_;
  std::unordered_map<std::string, Node> nodes_;
};

enum class OidCsvKind { kBoxes, kImageLabels };

struct OidExpansionReport {
  size_t rows_read = 0;
  size_t rows_added = 0;
  // Every row that has ancestors (descendants for negative labels) already has each copy: the file
  // was expanded before (the challenge ships *_expanded.csv files). Nothing is added then.
  bool already_expanded = false;
  std::string summary() const;
};

// Expands the rows of a challenge CSV (boxes: ImageID,Source,LabelName,...,IsGroupOf,...; image
// labels: ImageID,Source,LabelName,Confidence) and returns the text of the expanded file: the
// header, then each input row followed by its copies, the LabelName field replaced and every other
// field kept byte for byte, copies in label order. Rows are not deduplicated (nor are they by the
// official script). `where` names the text in errors.
std::string expand_oid_csv(const std::string& text, OidCsvKind kind, const OidHierarchy& hierarchy,
                           const std::string& where, OidExpansionReport* report = nullptr);

}  // namespace largedet::evaluation
