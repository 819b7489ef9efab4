// Helpers of the modeling tests: torchvision fixtures built at test time (cached per script
// version in the test's working directory), the deterministic sampler both sides use, and tensor
// comparisons.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "largedet/modeling/backbone/resnet.h"
#include "largedet/modeling/sampling.h"
#include "largedet/tensor/safetensors.h"

namespace largedet::modeling::testing {

// A ResNet `factor` times as wide as torchvision's (stem, every stage), for fast tests.
inline void narrow(ResNetOptions& o, double factor) {
  auto scaled = [&](int64_t c) { return std::max<int64_t>(1, std::llround(c * factor)); };
  o.stem_out_channels = scaled(64);
  o.width_per_group = scaled(64);
  o.res2_out_channels = scaled(o.depth >= 50 ? 256 : 64);
}

// Parameter count of a module: all of them, or those that require gradients.
inline int64_t count_params(const torch::nn::Module& m, bool trainable_only = false) {
  int64_t n = 0;
  for (const auto& p : m.parameters())
    if (!trainable_only || p.requires_grad()) n += p.numel();
  return n;
}

inline std::string fixture_script() {
  return std::string(LARGEDET_SOURCE_DIR) + "/tests/modeling/torchvision_fixtures.py";
}

// The fixture directory of `arch`, built by torchvision_fixtures.py when not cached yet; "" when
// the venv has no torchvision (callers skip). A failing script fails the test.
inline std::string torchvision_fixture(const std::string& arch) {
  const std::string python = LARGEDET_PYTHON;
  if (python.empty() || !std::filesystem::exists(python)) return "";
  if (std::system(("\"" + python + "\" -c \"import torchvision\" > /dev/null 2>&1").c_str()) != 0)
    return "";
  struct stat st {};
  std::string version;
  for (auto f :
       {fixture_script(), std::string(LARGEDET_SOURCE_DIR) + "/tools/convert_torchvision.py"}) {
    if (::stat(f.c_str(), &st) == 0) version += "_" + std::to_string(st.st_mtime);
  }
  auto root = std::filesystem::current_path() / ("modeling_fixtures" + version);
  std::filesystem::create_directories(root);
  auto dir = root / arch;
  // One test builds an arch's fixture (~30-60 s of Python) while the others that need it wait
  // (`ctest -j` starts them together), instead of each building its own copy. The kernel
  // releases the lock of a test that dies.
  struct Lock {
    int fd;
    ~Lock() {
      if (fd >= 0) ::close(fd);  // releases the flock
    }
  } lock{::open((dir.string() + ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644)};
  if (lock.fd < 0 || ::flock(lock.fd, LOCK_EX) != 0) {
    ADD_FAILURE() << "cannot lock " << dir << ".lock";
    return "";
  }
  if (!std::filesystem::exists(dir / "io.safetensors")) {
    // Renamed into place whole: a test that dies half-way leaves no half fixture behind.
    auto tmp = dir.string() + ".tmp" + std::to_string(::getpid());
    std::string cmd =
        "\"" + python + "\" \"" + fixture_script() + "\" " + arch + " \"" + tmp + "\"";
    if (std::system(cmd.c_str()) != 0) {
      ADD_FAILURE() << "fixture script failed: " << cmd;
      return "";
    }
    std::filesystem::rename(tmp, dir);
  }
  return dir.string();
}

// The first positives and negatives in index order, no randomness: the parity tests feed
// torchvision the same rule (torchvision_fixtures.py), so that both sides sample the same examples.
inline SamplerFn first_k_sampler(int64_t batch_size_per_image, double positive_fraction) {
  return [=](const torch::Tensor& labels) {
    auto pos = torch::zeros_like(labels, torch::kBool);
    auto neg = torch::zeros_like(labels, torch::kBool);
    for (int64_t i = 0; i < labels.size(0); ++i) {
      auto positive = torch::nonzero(labels[i] >= 1).view(-1);
      auto negative = torch::nonzero(labels[i] == 0).view(-1);
      int64_t num_pos = std::min<int64_t>(
          positive.numel(), static_cast<int64_t>(batch_size_per_image * positive_fraction));
      int64_t num_neg = std::min<int64_t>(negative.numel(), batch_size_per_image - num_pos);
      pos[i].index_fill_(0, positive.narrow(0, 0, num_pos), true);
      neg[i].index_fill_(0, negative.narrow(0, 0, num_neg), true);
    }
    return std::make_pair(pos, neg);
  };
}

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.numel() == 0 && b.numel() == 0) return 0;
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>();
}

}  // namespace largedet::modeling::testing

#define LARGEDET_TORCHVISION_FIXTURE(var, arch)                                     \
  const std::string var = ::largedet::modeling::testing::torchvision_fixture(arch); \
  if (var.empty()) {                                                                \
    if (::testing::Test::HasFailure()) return;                                      \
    GTEST_SKIP() << "torchvision unavailable in " << LARGEDET_PYTHON;               \
  }
