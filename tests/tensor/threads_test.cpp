#include <gtest/gtest.h>

#include <ATen/Parallel.h>

#include <vector>

#include "largedet/tensor/threads.h"

namespace largedet {
namespace {

TEST(Threads, UsesUsableCoresUnlessTold) {
  EXPECT_EQ(configure_threads(1), 1);
  EXPECT_EQ(at::get_num_threads(), 1);
  EXPECT_EQ(configure_threads(0), usable_cores());
  EXPECT_EQ(configure_threads(0, 1000), 1);
}

// at::parallel_for is a header template that runs serially unless our own sources are compiled
// with OpenMP: the build must give them (and this test, through the same targets) -fopenmp.
TEST(Threads, ParallelForRunsOnTheIntraOpThreads) {
  const int threads = at::get_num_threads();
  configure_threads(2);
  std::vector<int> ran_on(2, -1);
  at::parallel_for(0, 2, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) ran_on[i] = at::get_thread_num();
  });
  configure_threads(threads);
  EXPECT_EQ(ran_on, (std::vector<int>{0, 1}));
}

}  // namespace
}  // namespace largedet
