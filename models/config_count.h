// config_count.h: the parameter counts of model configurations, in int64 arithmetic that saturates
// at INT64_MAX instead of overflowing. A configuration may come from a checkpoint's metadata, i.e.
// from anywhere; its validate() uses these counts to refuse a model too large to build before any
// size is multiplied out (which could overflow) or allocated (which could exhaust memory).
#pragma once
#include <cstdint>
#include <initializer_list>
#include <limits>

namespace ll::models::config_count {

constexpr int64_t kSaturated = std::numeric_limits<int64_t>::max();

// The product of non-negative factors, or kSaturated when it does not fit in int64.
inline int64_t mul(std::initializer_list<int64_t> factors) {
  int64_t p = 1;
  for (int64_t f : factors) {
    if (__builtin_mul_overflow(p, f, &p)) return kSaturated;
  }
  return p;
}

// The sum of non-negative terms, or kSaturated when it does not fit in int64.
inline int64_t add(std::initializer_list<int64_t> terms) {
  int64_t s = 0;
  for (int64_t t : terms) {
    if (__builtin_add_overflow(s, t, &s)) return kSaturated;
  }
  return s;
}

}  // namespace ll::models::config_count
