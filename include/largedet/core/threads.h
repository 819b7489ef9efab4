// The cores this process may use: its CPU affinity, which respects taskset and container limits.
// LibTorch's intra-op threads are set from it by tensor/threads.h.
#pragma once

namespace largedet {

// Cores this process may run on.
int usable_cores();

}  // namespace largedet
