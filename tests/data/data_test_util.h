// Helpers for the data tests: temporary directories and small files.
#pragma once

#include <filesystem>
#include <string>

namespace largedet::data::testing {

// A fresh directory under /tmp, removed when the object goes (tests link libstdc++ before
// libtorch, so std::filesystem::remove_all is the real one here).
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_text(const std::string& path, const std::string& text);

}  // namespace largedet::data::testing
