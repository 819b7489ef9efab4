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

}  // namespace largedet::data
