// Device-parametrised tests (docs/ops.md, "Tests on both devices"). A suite derived from OnDevice
// and instantiated with LARGEDET_ON_DEVICES runs each test twice: Cpu/Suite.Test/cpu in every
// ctest run, the CPU kernels standing in for the device with the same inputs, references and
// tolerances, and Cuda/Suite.Test/cuda, labelled gpu (its name starts with Cuda) and skipped where
// no GPU is present. A wrong reference or tolerance so fails on the CPU, before a GPU is lent.
#pragma once

#include <gtest/gtest.h>

#include <c10/core/Device.h>
#include <torch/cuda.h>

#include <string>

namespace largedet::test {

class OnDevice : public ::testing::TestWithParam<c10::DeviceType> {
 protected:
  void SetUp() override {
    if (on_cuda() && !torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  }
  bool on_cuda() const { return GetParam() == c10::kCUDA; }
  c10::Device device() const { return on_cuda() ? c10::Device(c10::kCUDA, 0) : c10::kCPU; }
};

inline std::string device_name(const ::testing::TestParamInfo<c10::DeviceType>& info) {
  return info.param == c10::kCUDA ? "cuda" : "cpu";
}

}  // namespace largedet::test

#define LARGEDET_ON_DEVICES(Suite)                                     \
  INSTANTIATE_TEST_SUITE_P(Cpu, Suite, ::testing::Values(c10::kCPU),   \
                           ::largedet::test::device_name);             \
  INSTANTIATE_TEST_SUITE_P(Cuda, Suite, ::testing::Values(c10::kCUDA), \
                           ::largedet::test::device_name)
