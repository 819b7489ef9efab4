// Intra-op thread setup. LibTorch may start with a single intra-op thread; we use every core this
// process may run on (core/threads.h) unless told.
#pragma once

#include "largedet/core/threads.h"

namespace largedet {

// Sets ATen's intra-op threads to `requested`, or to usable_cores() / local_workers when
// requested <= 0 (so that N local workers share the machine). Returns the number set.
int configure_threads(int requested = 0, int local_workers = 1);

}  // namespace largedet
