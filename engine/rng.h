// rng.h: the seeded generator behind every random number of a run.
//
// A Generator is a position in one Philox stream (kernels/common/philox.h): (seed, subsequence) and
// an offset. Each random op reserves the numbers it needs with next(n) and receives the stream at
// the current offset; the offset then moves past them (rounded up to a multiple of 4, a Philox
// block). The op's backward keeps that PhiloxStream and regenerates the same numbers. The same seed
// and the same sequence of ops give the same numbers, on the CPU and on the GPU; saving the offset
// in a checkpoint makes a resumed run draw what an uninterrupted one would.
#pragma once
#include <cstdint>

#include "kernels/common/philox.h"

namespace ll {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0, uint64_t subsequence = 0) : seed_(seed), subsequence_(subsequence) {}

  // Reserves n numbers and returns where they start.
  PhiloxStream next(int64_t n) {
    PhiloxStream s{seed_, subsequence_, offset_};
    offset_ += (static_cast<uint64_t>(n) + 3) / 4 * 4;
    return s;
  }

  uint64_t seed() const { return seed_; }
  uint64_t subsequence() const { return subsequence_; }
  uint64_t offset() const { return offset_; }
  void set_offset(uint64_t offset) { offset_ = offset; }

 private:
  uint64_t seed_;
  uint64_t subsequence_;
  uint64_t offset_ = 0;
};

}  // namespace ll
