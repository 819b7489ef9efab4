#include "largedet/core/threads.h"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace largedet {

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

std::string omp_wait_policy_for(double load, int threads, int cores) {
  return load >= 1.0 || threads > cores ? "PASSIVE" : "";
}

std::string choose_omp_wait_policy() {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return "";
  double load = 0;
  std::ifstream in("/proc/loadavg");
  if (!(in >> load)) return "";  // no load to judge by: libgomp's default
  const int cores = usable_cores();
  const auto policy = omp_wait_policy_for(load, cores, cores);
  if (policy.empty()) return "";
  ::setenv("OMP_WAIT_POLICY", policy.c_str(), 0);
  std::ostringstream message;
  message << "the 1-minute load average is " << load << " on " << cores
          << " usable cores: other work shares them, so OpenMP threads will sleep instead of "
             "spinning while they wait (OMP_WAIT_POLICY="
          << policy << "; set OMP_WAIT_POLICY=ACTIVE to keep them spinning)";
  return message.str();
}

}  // namespace largedet
