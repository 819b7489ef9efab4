#include "largedet/tensor/threads.h"

#include <ATen/Parallel.h>
#include <algorithm>

namespace largedet {

int configure_threads(int requested, int local_workers) {
  int threads =
      requested > 0 ? requested : std::max(1, usable_cores() / std::max(1, local_workers));
  at::set_num_threads(threads);
  return threads;
}

}  // namespace largedet
