// dist_values.h: what the tests of engine/dist (tests/dist) share: each rank's contribution to an
// all-reduce, computable by every rank for every rank, so that a rank can check the reduced result
// against sum_in_fixed_order of all the contributions, bit for bit.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

namespace ll::test {

// Rank `rank`'s n values: magnitudes from 2^-20 to 2^20 and both signs, so that any other order of
// the additions shows in the bits. splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom
// number generators", 2014): the same numbers on every machine and standard library.
inline std::vector<float> rank_values(int rank, int64_t n, uint64_t seed) {
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(rank) * 0xD1B54A32D192ED03ull + 1;
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const float mantissa = 0.5f + static_cast<float>(z >> 40) / 16777216.0f;  // [0.5, 1), 24 bits
    const int exponent = static_cast<int>((z >> 8) % 41) - 20;
    x = std::ldexp(mantissa, exponent) * ((z & 1) ? -1.0f : 1.0f);
  }
  return v;
}

}  // namespace ll::test
