// A registry of factories by name (the box and mask heads'; MODEL.ROI_BOX_HEAD.NAME, ...): the
// built-ins are installed by the registry's first use, not by static initialisers in other
// translation units (which a static-library link could drop); unknown names throw largedet::Error
// listing the registered ones.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "largedet/core/error.h"

namespace largedet::modeling {

template <typename Factory>
class Registry {
 public:
  // what: "box head"; key: the config key that names one; hint: how to add one.
  Registry(std::string what, std::string key, std::string hint,
           std::map<std::string, Factory> builtins)
      : what_(std::move(what)),
        key_(std::move(key)),
        hint_(std::move(hint)),
        factories_(std::move(builtins)) {}

  void add(const std::string& name, Factory factory) {
    LARGEDET_CHECK(!name.empty(), "registering a ", what_, ": empty name");
    std::lock_guard<std::mutex> lock(mutex_);
    factories_[name] = std::move(factory);
  }

  Factory get(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = factories_.find(name);
    if (it == factories_.end()) {
      std::string known;
      for (const auto& [n, f] : factories_) known += (known.empty() ? "" : ", ") + n;
      throw Error("unknown " + what_ + " '" + name + "'", key_,
                  "use one of: " + known + " (or " + hint_ + ")");
    }
    return it->second;
  }

  std::vector<std::string> names() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [n, f] : factories_) out.push_back(n);
    return out;
  }

 private:
  std::string what_, key_, hint_;
  mutable std::mutex mutex_;
  std::map<std::string, Factory> factories_;
};

}  // namespace largedet::modeling
