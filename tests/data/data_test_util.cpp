#include "data_test_util.h"

#include <stdlib.h>

#include <fstream>
#include <stdexcept>

namespace largedet::data::testing {

TempDir::TempDir() {
  char pattern[] = "/tmp/largedet_data_test_XXXXXX";
  if (!mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace largedet::data::testing
