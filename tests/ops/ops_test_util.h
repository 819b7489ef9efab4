// Helpers shared by the ops tests: random boxes, raw tensor files for the Python oracle, and
// torchvision's native kernels.
#pragma once

#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

#include "oracle/torchvision_oracle.h"

namespace largedet::ops::testing {

// Random xyxy boxes inside a width x height image, sides in [min_side, max_side].
inline at::Tensor random_boxes(int64_t n, double width, double height, double min_side,
                               double max_side, at::ScalarType dtype = at::kFloat) {
  auto opts = at::TensorOptions().dtype(at::kDouble);
  auto w = at::rand({n}, opts) * (max_side - min_side) + min_side;
  auto h = at::rand({n}, opts) * (max_side - min_side) + min_side;
  auto x = at::rand({n}, opts) * width - 0.5 * w;
  auto y = at::rand({n}, opts) * height - 0.5 * h;
  return at::stack({x, y, x + w, y + h}, 1).to(dtype);
}

// A tensor's values as int64 on the host, for EXPECT_EQ against a literal vector.
inline std::vector<int64_t> to_vector(const at::Tensor& t) {
  auto c = t.to(at::kLong).contiguous().cpu();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

// torchvision's kernels loaded into this process, or the reason they are not.
inline bool torchvision_available(std::string* why) {
  const std::string lib = torchvision::find_library(LARGEDET_PYTHON);
  return torchvision::load(lib, why);
}

#define LARGEDET_REQUIRE_TORCHVISION()                            \
  do {                                                            \
    std::string why_;                                             \
    if (!::largedet::ops::testing::torchvision_available(&why_))  \
      GTEST_SKIP() << "torchvision oracle unavailable: " << why_; \
  } while (0)

// A fresh temporary directory for one test.
inline std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("largedet_ops_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Raw little-endian float32 files (numpy.fromfile / tofile on the Python side).
inline void write_f32(const std::filesystem::path& path, const at::Tensor& t) {
  auto c = t.to(at::kFloat).contiguous().cpu();
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(c.data_ptr<float>()), c.numel() * sizeof(float));
}

inline at::Tensor read_f32(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return at::Tensor();
  const auto bytes = static_cast<int64_t>(in.tellg());
  in.seekg(0);
  auto t = at::empty({bytes / static_cast<int64_t>(sizeof(float))}, at::kFloat);
  in.read(reinterpret_cast<char*>(t.data_ptr<float>()), bytes);
  return t;
}

// Runs `script` (Python source) with the test venv's Python and `dir` as its argument; returns the
// exit status, or -1 when that Python has no torchvision (the caller skips).
inline int run_python(const std::filesystem::path& dir, const std::string& script) {
  const std::string python = LARGEDET_PYTHON;
  if (python.empty() || !std::filesystem::exists(python)) return -1;
  const std::string probe = "\"" + python + "\" -c \"import torchvision\" > /dev/null 2>&1";
  if (std::system(probe.c_str()) != 0) return -1;
  const auto file = dir / "oracle.py";
  std::ofstream(file) << script;
  const std::string cmd = "\"" + python + "\" \"" + file.string() + "\" \"" + dir.string() + "\"";
  return std::system(cmd.c_str());
}

}  // namespace largedet::ops::testing
