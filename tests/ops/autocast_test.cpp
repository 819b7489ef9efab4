// AutocastGuard restores the autocast state it found, so that it nests in a caller's own region.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "largedet/ops/autocast.h"

namespace largedet::ops {
namespace {

// A matmul's output dtype says what autocast did to it.
at::ScalarType matmul_dtype() {
  const auto x = at::ones({4, 4});
  return at::mm(x, x).scalar_type();
}

TEST(AutocastGuard, RestoresTheStateItFound) {
  ASSERT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
  EXPECT_EQ(matmul_dtype(), at::kFloat);
  {
    AutocastGuard outer(true, at::kCPU, at::kBFloat16);
    EXPECT_EQ(matmul_dtype(), at::kBFloat16);
    {
      AutocastGuard off(false, at::kCPU, at::kBFloat16);  // disabled: changes nothing
      EXPECT_EQ(matmul_dtype(), at::kBFloat16);
    }
    {
      AutocastGuard inner(true, at::kCPU, at::kHalf);
      EXPECT_EQ(matmul_dtype(), at::kHalf);
    }
    // Back to the outer region's bf16, still enabled (the guard used to switch autocast off).
    EXPECT_TRUE(at::autocast::is_autocast_enabled(at::kCPU));
    EXPECT_EQ(at::autocast::get_autocast_dtype(at::kCPU), at::kBFloat16);
    EXPECT_EQ(matmul_dtype(), at::kBFloat16);
  }
  EXPECT_FALSE(at::autocast::is_autocast_enabled(at::kCPU));
  EXPECT_EQ(matmul_dtype(), at::kFloat);
}

}  // namespace
}  // namespace largedet::ops
