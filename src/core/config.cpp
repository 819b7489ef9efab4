#include "largedet/core/config.h"

#include <yaml-cpp/depthguard.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <set>

#include "largedet/core/config_schema.h"
#include "largedet/core/error.h"
#include "largedet/core/file_io.h"

namespace largedet {

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

// Every key and section, dotted: the candidates of an unknown key's suggestion.
void collect_keys(const YAML::Node& node, const std::string& prefix,
                  std::vector<std::string>* out) {
  for (const auto& item : node) {
    std::string key = prefix + item.first.as<std::string>();
    out->push_back(key);
    if (item.second.IsMap()) collect_keys(item.second, key + ".", out);
  }
}

// A value as error messages quote it: a pasted 5 MB string must not flood the terminal.
std::string excerpt(const std::string& text) {
  constexpr size_t kShown = 80;
  if (text.size() <= kShown) return text;
  return text.substr(0, kShown) + "... (" + std::to_string(text.size()) + " characters)";
}

std::string location(const std::string& file, const YAML::Mark& mark) {
  return mark.line >= 0 ? file + ":" + std::to_string(mark.line + 1) : file;
}

// yaml-cpp keeps both entries of a key written twice and a lookup finds only one of them: a recipe
// that sets a key twice would silently ignore one of its values.
void refuse_duplicate_keys(const YAML::Node& node, const std::string& path,
                           const std::string& prefix) {
  if (node.IsSequence()) {
    for (const auto& item : node) refuse_duplicate_keys(item, path, prefix);
    return;
  }
  if (!node.IsMap()) return;
  std::set<std::string> seen;
  for (const auto& item : node) {
    const std::string key = item.first.Scalar();
    if (!seen.insert(key).second)
      throw Error("'" + prefix + key + "' is set twice", location(path, item.first.Mark()),
                  "keep one of the two");
    refuse_duplicate_keys(item.second, path, prefix + key + ".");
  }
}

YAML::Node load_yaml_file(const std::string& path) {
  check_input_file(path, "the recipe");
  try {
    YAML::Node root = YAML::LoadFile(path);
    refuse_duplicate_keys(root, path, "");
    return root;
  } catch (const YAML::BadFile&) {
    throw Error("cannot open config file", path, "check the path");
  } catch (const YAML::DeepRecursion& e) {  // yaml-cpp's own message is "bad file"
    throw Error(detail::concat("the YAML nests deeper than yaml-cpp reads (", e.depth(),
                               " levels of parsing)"),
                location(path, e.mark),
                "a recipe nests a few levels (MODEL: ROI_HEADS: NUM_CLASSES: 80): is this the "
                "file you meant?");
  } catch (const YAML::ParserException& e) {
    throw Error("YAML syntax error: " + e.msg, location(path, e.mark));
  }
}

// What a relative _BASE_ is relative to: the including recipe's directory with its slash, or "".
std::string including_directory_prefix(const std::string& path) {
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

bool is_bool_text(const std::string& t) {
  return t == "true" || t == "false" || t == "True" || t == "False";
}

bool is_int_text(const std::string& t) {
  size_t i = (!t.empty() && (t[0] == '-' || t[0] == '+')) ? 1 : 0;
  if (i == t.size()) return false;
  for (; i < t.size(); ++i)
    if (!std::isdigit(static_cast<unsigned char>(t[i]))) return false;
  return true;
}

bool parse_number(const std::string& t, double* out) {
  if (t.empty()) return false;
  char* end = nullptr;
  errno = 0;
  *out = std::strtod(t.c_str(), &end);
  // ERANGE: 1e-400 would read as 0 (and 1e400 as inf): not the number written.
  return end == t.c_str() + t.size() && std::isfinite(*out) && errno != ERANGE;
}

// One text per value, so that 1, 1.0 and 1.0e0 (or True and true) compare equal.
std::string canonical(const YAML::Node& node) {
  if (node.IsSequence()) {
    std::string out = "[";
    for (size_t i = 0; i < node.size(); ++i) out += (i ? ", " : "") + canonical(node[i]);
    return out + "]";
  }
  if (!node.IsScalar()) return "";
  const std::string text = node.Scalar();
  if (is_bool_text(text)) return text == "true" || text == "True" ? "true" : "false";
  double number;
  if (node.Tag() != "!" && parse_number(text, &number)) {
    char buffer[64];
    std::snprintf(buffer, sizeof buffer, "%.15g", number);
    return buffer;
  }
  return text;
}

// detectron2 writes tuples, which its YAML files hold as strings: "(60000, 80000)",
// '("coco_2017_train",)'. They become YAML flow sequences.
YAML::Node tuple_to_sequence(const std::string& text) {
  std::string out;
  char quote = 0;
  for (char c : text) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '"' || c == '\'') {
      quote = c;
    } else if (c == '(') {
      c = '[';
    } else if (c == ')') {
      c = ']';
    }
    out += c;
  }
  // A trailing comma ends a one-element tuple; YAML sequences do not take one.
  std::string cleaned;
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] == ',') {
      size_t j = i + 1;
      while (j < out.size() && std::isspace(static_cast<unsigned char>(out[j]))) ++j;
      if (j < out.size() && out[j] == ']') continue;
    }
    cleaned += out[i];
  }
  return YAML::Load(cleaned);
}

bool is_list(ValueType type) {
  return type == ValueType::kIntList || type == ValueType::kFloatList ||
         type == ValueType::kStringList || type == ValueType::kFloatLists;
}

ValueType element_type(ValueType type) {
  switch (type) {
    case ValueType::kIntList:
      return ValueType::kInt;
    case ValueType::kFloatList:
    case ValueType::kFloatLists:
      return ValueType::kFloat;
    case ValueType::kStringList:
      return ValueType::kString;
    default:
      return type;
  }
}

}  // namespace

namespace {

void flatten(const YAML::Node& node, const std::string& prefix,
             std::map<std::string, std::string>* out) {
  for (const auto& item : node) {
    const std::string key = prefix + item.first.as<std::string>();
    if (item.second.IsMap())
      flatten(item.second, key + ".", out);
    else
      (*out)[key] = canonical(item.second);
  }
}

}  // namespace

std::vector<std::string> config_differences(const std::string& before_yaml,
                                            const std::string& after_yaml) {
  std::map<std::string, std::string> before, after;
  flatten(YAML::Load(before_yaml), "", &before);
  flatten(YAML::Load(after_yaml), "", &after);
  std::map<std::string, std::pair<std::string, std::string>> changed;
  for (const auto& [key, value] : before) changed[key].first = value;
  for (const auto& [key, value] : after) changed[key].second = value;
  std::vector<std::string> out;
  for (const auto& [key, values] : changed) {
    if (before.count(key) && after.count(key) && values.first == values.second) continue;
    out.push_back(key + ": " + (before.count(key) ? excerpt(values.first) : "(unset)") + " -> " +
                  (after.count(key) ? excerpt(values.second) : "(unset)"));
  }
  return out;
}

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

Config::Config(const Config& other) : root_(YAML::Clone(other.root_)), sources_(other.sources_) {}

// YAML::Node's assignment writes into the node it refers to: reset() rebinds instead.
Config& Config::operator=(const Config& other) {
  if (this != &other) {
    root_.reset(YAML::Clone(other.root_));
    sources_ = other.sources_;
  }
  return *this;
}

Config::Config(Config&& other) noexcept : sources_(std::move(other.sources_)) {
  root_.reset(other.root_);
}

Config& Config::operator=(Config&& other) noexcept {
  root_.reset(other.root_);
  sources_ = std::move(other.sources_);
  return *this;
}

Config Config::defaults() {
  Config config;
  config.root_ = YAML::Node(YAML::NodeType::Map);
  for (const auto& spec : config_schema()) {
    auto parts = split_key(spec.key);
    YAML::Node node = config.root_;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      if (!node[parts[i]]) node[parts[i]] = YAML::Node(YAML::NodeType::Map);
      node.reset(node[parts[i]]);
    }
    node[parts.back()] = spec.type == ValueType::kString ? YAML::Node(spec.default_yaml)
                                                         : YAML::Load(spec.default_yaml);
  }
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
    const std::string where = location(chain.back(), base.Mark());
    if (!base.IsScalar() || base.Scalar().empty())
      throw Error("_BASE_ must name one recipe file", where,
                  "write one path, relative to this file (detectron2 takes no list either)");
    std::string next = base.Scalar();
    if (next[0] != '/') next = including_directory_prefix(chain.back()) + next;
    if (is_directory(next))
      throw Error("_BASE_ names a directory, " + next + ", not a recipe file", where,
                  "name the .yaml file in it");
    if (std::find(chain.begin(), chain.end(), next) != chain.end())
      throw Error("_BASE_ chain loops back to " + next, where);
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
    if (!current) {
      if (item.second.IsMap() && covers_unsupported(key)) {
        merge_node(item.second, key + ".", file);
        continue;
      }
      check_unsupported(key, item.second, where);
      continue;
    }
    if (current.IsMap()) {
      if (!item.second.IsMap() && !item.second.IsNull())
        throw Error("'" + key + "' is a section and needs nested keys, not a value", where);
      merge_node(item.second, key + ".", file);
    } else {
      if (item.second.IsMap()) throw Error("'" + key + "' takes a value, not nested keys", where);
      set_node(key, item.second, where);
    }
  }
}

bool Config::covers_unsupported(const std::string& section) const {
  for (const auto& u : unsupported_detectron2_keys())
    if (u.key.rfind(section + ".", 0) == 0) return true;
  return false;
}

void Config::check_unsupported(const std::string& key, const YAML::Node& value,
                               const std::string& where) const {
  const UnsupportedKey* unsupported = find_unsupported_key(key);
  if (!unsupported) unknown_key(key, where);
  // Writing detectron2's default changes nothing, so detectron2 recipes that spell it out load.
  if (!unsupported->detectron2_default.empty() && value.IsDefined() &&
      canonical(value) == canonical(YAML::Load(unsupported->detectron2_default)))
    return;
  throw Error("detectron2 key " + key + " is not supported by LargeDet: " + unsupported->reason,
              where,
              unsupported->detectron2_default.empty()
                  ? "remove it from the recipe"
                  : "remove it or set detectron2's default, " + unsupported->detectron2_default);
}

void Config::apply_overrides(const std::vector<std::string>& overrides) {
  for (const auto& item : overrides) {
    auto eq = item.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error("override '" + excerpt(item) + "' is not KEY=VALUE", "command line",
                  "write e.g. SOLVER.BASE_LR=0.02");
    std::string key = item.substr(0, eq);
    if (!lookup(key)) {
      check_unsupported(key, parse_value(key, item.substr(eq + 1), "command line"), "command line");
      continue;
    }
    if (lookup(key).IsMap())
      throw Error("'" + key + "' is a section; override one of its keys", "command line");
    set(key, item.substr(eq + 1), "command line");
  }
}

YAML::Node Config::parse_value(const std::string& key, const std::string& yaml_value,
                               const std::string& source) {
  try {
    return YAML::Load(yaml_value);
  } catch (const YAML::ParserException& e) {
    throw Error("cannot parse the value of '" + key + "': " + e.msg, source);
  }
}

void Config::set(const std::string& key, const std::string& yaml_value, const std::string& source) {
  if (!find_key_spec(key)) unknown_key(key, source);
  set_node(key, parse_value(key, yaml_value, source), source);
}

void Config::set_node(const std::string& key, const YAML::Node& raw, const std::string& source) {
  const KeySpec* spec = find_key_spec(key);
  if (!spec) unknown_key(key, source);
  YAML::Node value = normalized(*spec, raw, source);
  auto parts = split_key(key);
  YAML::Node node = root_;
  for (size_t i = 0; i + 1 < parts.size(); ++i) node.reset(node[parts[i]]);
  node[parts.back()] = value;
  sources_[key] = source;
}

YAML::Node Config::normalized(const KeySpec& spec, const YAML::Node& raw,
                              const std::string& source) {
  const std::string& key = spec.key;
  auto fail = [&](const std::string& why) -> Error {
    return Error("'" + key + "' must be " + value_type_name(spec.type) + why + ", got '" +
                     excerpt(raw.IsScalar() ? raw.Scalar() : YAML::Dump(raw)) + "'",
                 source);
  };
  if (raw.Tag().find("python") != std::string::npos)
    throw Error("'" + key + "' holds a Python expression (" + raw.Tag() +
                    "), which LargeDet does not evaluate",
                source, "write the value out as a YAML list");
  if (raw.IsMap()) throw Error("'" + key + "' takes a value, not nested keys", source);
  // Node assignment writes through to the node referred to: rebind with reset().
  YAML::Node value = YAML::Clone(raw);
  if (is_list(spec.type)) {
    if (value.IsNull()) value.reset(YAML::Node(YAML::NodeType::Sequence));
    if (value.IsScalar()) {
      const std::string text = value.Scalar();
      const auto first = text.find_first_not_of(" \t");
      if (first != std::string::npos && text[first] == '(') {
        try {
          value.reset(tuple_to_sequence(text));
        } catch (const YAML::Exception&) {
          throw fail(" (a tuple that could not be read)");
        }
      }
    }
    if (value.IsScalar()) {
      YAML::Node list(YAML::NodeType::Sequence);
      list.push_back(value);
      value.reset(list);
    }
    // detectron2 broadcasts one flat list to every level: [0.5, 1, 2] means [[0.5, 1, 2]].
    if (spec.type == ValueType::kFloatLists && value.size() > 0 && !value[0].IsSequence()) {
      YAML::Node outer(YAML::NodeType::Sequence);
      outer.push_back(value);
      value.reset(outer);
    }
  } else if (value.IsSequence()) {
    throw fail("");
  }
  if (value.IsNull()) {
    if (spec.type == ValueType::kString) return YAML::Node(std::string());
    if (spec.default_yaml == "null") return value;
    throw fail("");
  }
  // Type and range of every scalar.
  std::function<void(const YAML::Node&, ValueType)> check = [&](const YAML::Node& n,
                                                                ValueType type) {
    if (type == ValueType::kFloatLists || n.IsSequence()) {
      if (!n.IsSequence()) throw fail("");
      for (const auto& element : n) {
        if (element.IsSequence() && type != ValueType::kFloatLists) throw fail("");
        if (type == ValueType::kFloatLists && !element.IsSequence()) throw fail("");
        check(element, type == ValueType::kFloatLists ? ValueType::kFloatList : type);
      }
      return;
    }
    if (!n.IsScalar()) throw fail("");
    const ValueType scalar = element_type(type);
    const std::string text = n.Scalar();
    double number = 0;
    switch (scalar) {
      case ValueType::kBool:
        if (!is_bool_text(text)) throw fail("");
        return;
      case ValueType::kString:
        return;
      case ValueType::kInt:
        if (!is_int_text(text)) throw fail("");
        number = std::stod(text);
        break;
      default:
        if (!parse_number(text, &number)) throw fail("");
        break;
    }
    if (spec.min && number < *spec.min)
      throw Error("'" + key + "' is " + excerpt(text) + ", below its minimum " +
                      canonical(YAML::Node(*spec.min)),
                  source, spec.help);
    if (spec.max && number > *spec.max)
      throw Error("'" + key + "' is " + excerpt(text) + ", above its maximum " +
                      canonical(YAML::Node(*spec.max)),
                  source, spec.help);
  };
  check(value, spec.type);
  if (!spec.choices.empty()) {
    const std::string text =
        spec.type == ValueType::kString && value.IsScalar() ? value.Scalar() : canonical(value);
    if (std::find(spec.choices.begin(), spec.choices.end(), text) == spec.choices.end()) {
      std::string list;
      for (const auto& c : spec.choices)
        list += (list.empty() ? "" : ", ") + (c.empty() ? "\"\"" : c);
      // Spelling suggestions are for names: 42 is not "almost 18".
      const std::string close =
          spec.type == ValueType::kString ? closest_match(text, spec.choices) : "";
      throw Error("'" + key + "' is '" + excerpt(text) + "', which LargeDet does not build (" +
                      spec.help + ")",
                  source,
                  "use " + list +
                      (close.empty() || close == text ? "" : "; did you mean '" + close + "'?"));
    }
  }
  return value;
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
  // Keys LargeDet once read under another name.
  static const std::map<std::string, std::string> kRenamed = {
      {"SOLVER.MAX_GRAD_NORM",
       "it is now detectron2's SOLVER.CLIP_GRADIENTS: set SOLVER.CLIP_GRADIENTS.ENABLED=true, "
       "SOLVER.CLIP_GRADIENTS.CLIP_TYPE=full_model and SOLVER.CLIP_GRADIENTS.CLIP_VALUE to the old "
       "value"}};
  if (auto renamed = kRenamed.find(key); renamed != kRenamed.end())
    throw Error("unknown config key '" + key + "'", where, renamed->second);
  std::vector<std::string> known;
  collect_keys(root_, "", &known);
  std::string suggestion = closest_match(key, known);
  throw Error("unknown config key '" + key + "'", where,
              suggestion.empty() ? "run `largedet config --dump` to list the known keys"
                                 : "did you mean '" + suggestion + "'?");
}

bool Config::has(const std::string& key) const {
  YAML::Node node = lookup(key);
  return node.IsDefined() && !node.IsMap();
}

bool Config::is_null(const std::string& key) const {
  YAML::Node node = lookup(key);
  if (!node.IsDefined()) unknown_key(key, "code");
  return node.IsNull();
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
      if (!is_bool_text(node.as<std::string>())) throw YAML::BadConversion(node.Mark());
    }
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // Reject 0.5 for an integer key instead of truncating it.
      std::string text = node.as<std::string>();
      if (text.find_first_of(".eE") != std::string::npos) throw YAML::BadConversion(node.Mark());
    }
    return node.as<T>();
  } catch (const YAML::Exception&) {
    throw Error(
        "'" + key + "' must be " + type_name<T>() + ", got '" + excerpt(YAML::Dump(node)) + "'",
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

std::string Config::value_text(const std::string& key) const {
  YAML::Node node = lookup(key);
  if (!node.IsDefined()) unknown_key(key, "code");
  YAML::Emitter out;
  out << YAML::Flow << node;
  return out.c_str();
}

std::string Config::dump() const {
  YAML::Emitter out;
  out << root_;
  return std::string(out.c_str()) + "\n";
}

std::vector<std::string> Config::detectron2_differences() const {
  std::vector<std::string> out;
  for (const auto& spec : config_schema()) {
    if (spec.detectron2_default.empty() || sources_.count(spec.key)) continue;
    out.push_back(spec.key + ": " + canonical(lookup(spec.key)) + " here, " +
                  spec.detectron2_default + " in detectron2");
  }
  return out;
}

}  // namespace largedet
