// Seed mixing for reproducible randomness that does not depend on thread timing or on the standard
// library's distributions.
#pragma once

#include <cstdint>

namespace largedet::data {

// splitmix64 of a combined with b: a 64-bit hash, used to derive per-epoch and per-sample seeds.
inline uint64_t mix_seed(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9E3779B97F4A7C15ull * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A 64-bit random value r as a double uniform in [0, 1) (its top 53 bits).
inline double uniform01(uint64_t r) { return static_cast<double>(r >> 11) * 0x1.0p-53; }

// A 64-bit random value r as an integer in [lo, hi] (r modulo the count: a bias under 2^-32 for
// counts under 2^32).
inline int64_t uniform_int(uint64_t r, int64_t lo, int64_t hi) {
  return lo + static_cast<int64_t>(r % static_cast<uint64_t>(hi - lo + 1));
}

}  // namespace largedet::data
