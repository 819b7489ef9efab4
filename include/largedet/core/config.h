// Configuration: detectron2 YAML recipes over the typed schema of config_schema.h, plus
// `KEY=VALUE` overrides from the command line (`SOLVER.BASE_LR=0.02`). A recipe may start from
// another with `_BASE_: other.yaml` (relative to itself). Every value is checked against its
// key's type, range and allowed values when it is set, so a recipe is refused the same way by
// `config --dump` and by `train`; detectron2's tuples written as strings ("(60000, 80000)") are
// read as lists. Unknown keys are errors that name the file and line and suggest the closest
// known key; detectron2 keys we do not implement say so. Every value remembers where it came
// from, so errors name the key and the file:line that set it.
#pragma once

#include <yaml-cpp/yaml.h>

#include "largedet/core/config_schema.h"

#include <map>
#include <string>
#include <vector>

namespace largedet {

class Config {
 public:
  // Copies are deep: changing a copy leaves the original as it was.
  Config(const Config& other);
  Config& operator=(const Config& other);
  Config(Config&& other) noexcept;
  Config& operator=(Config&& other) noexcept;

  // Every known key with its default value.
  static Config defaults();
  // defaults() merged with FILE (after its _BASE_ chain) and then the overrides.
  static Config from_file(const std::string& path, const std::vector<std::string>& overrides = {});

  void merge_file(const std::string& path);
  // Each item is `DOTTED.KEY=value`; value is parsed as YAML (`[1, 2]`, `true`, `0.1`, `text`).
  void apply_overrides(const std::vector<std::string>& overrides);
  // Sets one known key from YAML text; `source` is recorded for messages.
  void set(const std::string& key, const std::string& yaml_value,
           const std::string& source = "code");

  bool has(const std::string& key) const;
  // True for a key whose value is null (SOLVER.WEIGHT_DECAY_BIAS: "follow WEIGHT_DECAY").
  bool is_null(const std::string& key) const;
  // Typed getters: T is bool, int, int64_t, double, std::string, a std::vector of those, or
  // std::vector<std::vector<double>> (e.g. MODEL.ANCHOR_GENERATOR.SIZES).
  // Throw largedet::Error naming the key and where its value came from when it does not convert.
  template <typename T>
  T get(const std::string& key) const;
  // Like get(), but returns `fallback` for a key that is not in the tree.
  template <typename T>
  T get_or(const std::string& key, const T& fallback) const {
    return has(key) ? get<T>(key) : fallback;
  }
  // "recipe.yaml:12", "command line", or "default".
  std::string source(const std::string& key) const;
  // One key's value as one line of YAML ("[0.5, 1.0, 2.0]", "FrozenBN", "''").
  std::string value_text(const std::string& key) const;
  // The effective configuration as YAML, keys in their defined order.
  std::string dump() const;
  // "KEY: ours here, theirs in detectron2" for each key whose default differs from detectron2's
  // and that nothing set (what a detectron2 recipe silently gets from us).
  std::vector<std::string> detectron2_differences() const;

 private:
  Config() = default;
  void merge_node(const YAML::Node& node, const std::string& prefix, const std::string& file);
  void set_node(const std::string& key, const YAML::Node& value, const std::string& source);
  static YAML::Node parse_value(const std::string& key, const std::string& yaml_value,
                                const std::string& source);
  // `raw` checked against the key's spec and brought to its stored form (tuples as lists, a
  // scalar as a one-element list, ...); throws largedet::Error naming the key and `source`.
  static YAML::Node normalized(const KeySpec& spec, const YAML::Node& raw,
                               const std::string& source);
  bool covers_unsupported(const std::string& section) const;
  void check_unsupported(const std::string& key, const YAML::Node& value,
                         const std::string& where) const;
  YAML::Node lookup(const std::string& key) const;
  [[noreturn]] void unknown_key(const std::string& key, const std::string& where) const;

  YAML::Node root_;
  std::map<std::string, std::string> sources_;
};

// "KEY: A -> B" for every value that differs between two configurations as Config::dump() writes
// them (a key only one has: "(unset)"), in key order: what a resumed run changed.
std::vector<std::string> config_differences(const std::string& before_yaml,
                                            const std::string& after_yaml);

// The closest string to `word` among `candidates` by edit distance, or "" when none is close.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace largedet
