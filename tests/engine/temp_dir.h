// A scratch directory removed at the end of a test (without std::filesystem::remove_all, which the
// PyTorch wheel's libtorch.so shadows with a broken copy).
#pragma once

#include <stdlib.h>

#include <string>

namespace largedet::test {

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/largedet_test_XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace largedet::test
