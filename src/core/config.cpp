#include "largedet/core/config.h"

#include <algorithm>
#include <cstdint>
#include <set>

#include "largedet/core/error.h"

namespace largedet {

const char* default_config_yaml();  // config_defaults.cpp

namespace {

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t dot = key.find('.', start);
    parts.push_back(key.substr(start, dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return parts;
}

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      size_t substitute = diagonal + (std::toupper(a[i - 1]) == std::toupper(b[j - 1]) ? 0 : 1);
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
      diagonal = up;
    }
  }
  return row[b.size()];
}

void collect_keys(const YAML::Node& node, const std::string& prefix, std::vector<std::string>* out,
                  bool with_maps) {
  for (const auto& item : node) {
    std::string key = prefix + item.first.as<std::string>();
    if (item.second.IsMap()) {
      if (with_maps) out->push_back(key);
      collect_keys(item.second, key + ".", out, with_maps);
    } else {
      out->push_back(key);
    }
  }
}

std::string location(const std::string& file, const YAML::Mark& mark) {
  return mark.line >= 0 ? file + ":" + std::to_string(mark.line + 1) : file;
}

YAML::Node load_yaml_file(const std::string& path) {
  try {
    return YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw Error("cannot open config file", path, "check the path");
  } catch (const YAML::ParserException& e) {
    throw Error("YAML syntax error: " + e.msg, location(path, e.mark));
  }
}

std::string directory_of(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "" : path.substr(0, slash + 1);
}

template <typename T>
const char* type_name() {
  if constexpr (std::is_same_v<T, bool>) return "a boolean (true/false)";
  if constexpr (std::is_integral_v<T>) return "an integer";
  if constexpr (std::is_floating_point_v<T>) return "a number";
  if constexpr (std::is_same_v<T, std::string>) return "a string";
  return "a list";
}

}  // namespace

std::string closest_match(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 3) + 1;
  for (const auto& candidate : candidates) {
    size_t d = edit_distance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

Config Config::defaults() {
  Config config;
  config.root_ = YAML::Load(default_config_yaml());
  return config;
}

Config Config::from_file(const std::string& path, const std::vector<std::string>& overrides) {
  Config config = defaults();
  config.merge_file(path);
  config.apply_overrides(overrides);
  return config;
}

void Config::merge_file(const std::string& path) {
  std::vector<std::string> chain{path};
  // Follow _BASE_ to the root recipe, then merge from the root down.
  for (;;) {
    YAML::Node node = load_yaml_file(chain.back());
    if (!node.IsDefined() || node.IsNull()) break;
    if (!node.IsMap()) throw Error("a config file must be a mapping of keys", chain.back());
    YAML::Node base = node["_BASE_"];
    if (!base) break;
    std::string next = base.as<std::string>();
    if (next.empty() || next[0] != '/') next = directory_of(chain.back()) + next;
    if (std::find(chain.begin(), chain.end(), next) != chain.end())
      throw Error("_BASE_ chain loops back to " + next, location(chain.back(), base.Mark()));
    chain.push_back(next);
  }
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    YAML::Node node = load_yaml_file(*it);
    if (node.IsMap()) merge_node(node, "", *it);
  }
}

void Config::merge_node(const YAML::Node& node, const std::string& prefix,
                        const std::string& file) {
  for (const auto& item : node) {
    std::string name = item.first.as<std::string>();
    if (prefix.empty() && name == "_BASE_") continue;
    std::string key = prefix + name;
    std::string where = location(file, item.first.Mark());
    YAML::Node current = lookup(key);
    if (!current) unknown_key(key, where);
    if (current.IsMap()) {
      if (!item.second.IsMap() && !item.second.IsNull())
        throw Error("'" + key + "' is a section and needs nested keys, not a value", where);
      merge_node(item.second, key + ".", file);
    } else {
      if (item.second.IsMap()) throw Error("'" + key + "' takes a value, not nested keys", where);
      set(key, YAML::Dump(item.second), where);
    }
  }
}

void Config::apply_overrides(const std::vector<std::string>& overrides) {
  for (const auto& item : overrides) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error("override '" + item + "' is not KEY=VALUE", "command line",
                  "write e.g. SOLVER.BASE_LR=0.02");
    std::string key = item.substr(0, eq);
    if (!lookup(key)) unknown_key(key, "command line");
    if (lookup(key).IsMap())
      throw Error("'" + key + "' is a section; override one of its keys", "command line");
    set(key, item.substr(eq + 1), "command line");
  }
}

void Config::set(const std::string& key, const std::string& yaml_value, const std::string& source) {
  auto parts = split_key(key);
  YAML::Node node = root_;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    node.reset(node[parts[i]]);
    if (!node || !node.IsMap()) unknown_key(key, source);
  }
  if (!node[parts.back()] || node[parts.back()].IsMap()) unknown_key(key, source);
  YAML::Node value;
  try {
    value = YAML::Load(yaml_value);
  } catch (const YAML::ParserException& e) {
    throw Error("cannot parse the value of '" + key + "': " + e.msg, source);
  }
  if (value.IsMap()) throw Error("'" + key + "' takes a value, not nested keys", source);
  node[parts.back()] = value;
  sources_[key] = source;
}

YAML::Node Config::lookup(const std::string& key) const {
  YAML::Node node = root_;
  for (const auto& part : split_key(key)) {
    const YAML::Node& view = node;  // const access never inserts keys
    if (!view.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
    YAML::Node child = view[part];
    if (!child) return YAML::Node(YAML::NodeType::Undefined);
    node.reset(child);
  }
  return node;
}

void Config::unknown_key(const std::string& key, const std::string& where) const {
  std::vector<std::string> known;
  collect_keys(root_, "", &known, true);
  std::string suggestion = closest_match(key, known);
  throw Error("unknown config key '" + key + "'", where,
              suggestion.empty() ? "run `largedet config --dump` to list the known keys"
                                 : "did you mean '" + suggestion + "'?");
}

bool Config::has(const std::string& key) const {
  YAML::Node node = lookup(key);
  return node.IsDefined() && !node.IsMap();
}

std::string Config::source(const std::string& key) const {
  auto it = sources_.find(key);
  return it == sources_.end() ? "default" : it->second;
}

template <typename T>
T Config::get(const std::string& key) const {
  YAML::Node node = lookup(key);
  if (!node.IsDefined()) unknown_key(key, "code");
  try {
    if constexpr (std::is_same_v<T, bool>) {
      // yaml-cpp would accept "y"/"on"; we want exactly true/false.
      std::string text = node.as<std::string>();
      if (text != "true" && text != "false" && text != "True" && text != "False")
        throw YAML::BadConversion(node.Mark());
    }
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // Reject 0.5 for an integer key instead of truncating it.
      std::string text = node.as<std::string>();
      if (text.find_first_of(".eE") != std::string::npos) throw YAML::BadConversion(node.Mark());
    }
    return node.as<T>();
  } catch (const YAML::Exception&) {
    throw Error("'" + key + "' must be " + type_name<T>() + ", got '" + YAML::Dump(node) + "'",
                source(key));
  }
}

template bool Config::get<bool>(const std::string&) const;
template int Config::get<int>(const std::string&) const;
template int64_t Config::get<int64_t>(const std::string&) const;
template double Config::get<double>(const std::string&) const;
template std::string Config::get<std::string>(const std::string&) const;
template std::vector<int> Config::get<std::vector<int>>(const std::string&) const;
template std::vector<int64_t> Config::get<std::vector<int64_t>>(const std::string&) const;
template std::vector<double> Config::get<std::vector<double>>(const std::string&) const;
template std::vector<std::string> Config::get<std::vector<std::string>>(const std::string&) const;
template std::vector<std::vector<double>> Config::get<std::vector<std::vector<double>>>(
    const std::string&) const;

std::string Config::dump() const {
  YAML::Emitter out;
  out << root_;
  return std::string(out.c_str()) + "\n";
}

std::vector<std::string> Config::keys() const {
  std::vector<std::string> out;
  collect_keys(root_, "", &out, false);
  return out;
}

}  // namespace largedet
