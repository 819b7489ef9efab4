// Configuration: detectron2-style YAML recipes over a tree of known keys with defaults, plus
// `KEY=VALUE` overrides from the command line (`SOLVER.BASE_LR=0.02`). A recipe may start from
// another with `_BASE_: other.yaml` (relative to itself). Unknown keys are errors that name the
// file and line and suggest the closest known key; every value remembers where it came from, so a
// type error at a getter names the key and the file:line that set it.
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <string>
#include <vector>

namespace largedet {

class Config {
 public:
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
  // The effective configuration as YAML, keys in their defined order.
  std::string dump() const;
  // All leaf keys, dotted.
  std::vector<std::string> keys() const;

 private:
  Config() = default;
  void merge_node(const YAML::Node& node, const std::string& prefix, const std::string& file);
  YAML::Node lookup(const std::string& key) const;
  [[noreturn]] void unknown_key(const std::string& key, const std::string& where) const;

  YAML::Node root_;
  std::map<std::string, std::string> sources_;
};

// The closest string to `word` among `candidates` by edit distance, or "" when none is close.
std::string closest_match(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace largedet
