// The cores this process may use: its CPU affinity, which respects taskset and container limits.
// LibTorch's intra-op threads are set from it by tensor/threads.h. And whether OpenMP's threads
// should spin or sleep while they wait (docs/engine.md, "Threads on a shared machine").
#pragma once

#include <string>

namespace largedet {

// Cores this process may run on.
int usable_cores();

// The OMP_WAIT_POLICY the LibTorch programs this process starts should have when the user set
// none: "PASSIVE" (threads sleep between parallel regions) when other work already keeps a core
// busy (`load`, the 1-minute load average, at least 1) or when `threads` exceed the `cores`: there
// a spinning thread takes the core from the thread with the work, 5x slower in the measured case;
// "" (libgomp's default, spinning, the fastest on free cores) otherwise.
std::string omp_wait_policy_for(double load, int threads, int cores);

// Sets OMP_WAIT_POLICY in this process's environment (for the programs it then starts: libgomp
// reads it when it loads) by omp_wait_policy_for, with the load from /proc/loadavg and
// usable_cores() threads, unless the user set it. Returns what to tell the user, or "" when it set
// nothing.
std::string choose_omp_wait_policy();

}  // namespace largedet
