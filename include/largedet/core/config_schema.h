// The one typed schema of the configuration: every key LargeDet reads, with its type, default,
// range or allowed values, and whether the name is detectron2's or LargeDet's own; plus the
// detectron2 keys LargeDet does not implement, so that a detectron2 recipe setting one is refused
// with a message that says so instead of "unknown key". `Config`, `largedet config --dump/--keys`
// and `largedet train` all check values through it (docs/engine.md, "Configuration").
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace largedet {

enum class ValueType {
  kBool,
  kInt,
  kFloat,
  kString,
  kIntList,
  kFloatList,
  kStringList,
  kFloatLists
};

// detectron2: the key has detectron2's name and meaning. LargeDet: our own addition.
enum class KeyOrigin { kDetectron2, kLargeDet };

struct KeySpec {
  std::string key;           // dotted, e.g. "MODEL.RESNETS.DEPTH"
  std::string default_yaml;  // our default, as YAML text
  ValueType type = ValueType::kString;
  KeyOrigin origin = KeyOrigin::kDetectron2;
  std::string help;           // one line for `largedet config --keys`
  std::optional<double> min;  // inclusive bounds of a number or of every list element
  std::optional<double> max;
  // The only values accepted (canonical text: "true", "2", "[0, -1, 1]", "FrozenBN"); empty: any.
  std::vector<std::string> choices;
  // detectron2's default where it differs from ours (YAML text), for `VERSION: 2` recipes' warning.
  std::string detectron2_default;
};

// A detectron2 key (or a whole section, when `key` names one) that LargeDet does not implement.
// A recipe may still write it with detectron2's default value (`KEYPOINT_ON: False`), which
// changes nothing; any other value is refused.
struct UnsupportedKey {
  std::string key;
  std::string detectron2_default;  // YAML text; empty for a section, where nothing is accepted
  std::string reason;
};

const std::vector<KeySpec>& config_schema();
const std::vector<UnsupportedKey>& unsupported_detectron2_keys();
// nullptr when `key` is not in the schema.
const KeySpec* find_key_spec(const std::string& key);
// The entry covering `key` (the key itself or a section above it), or nullptr.
const UnsupportedKey* find_unsupported_key(const std::string& key);
const char* value_type_name(ValueType type);

}  // namespace largedet
