// philox_loop.h: how the CPU random ops walk a Philox stream.
//
// Element i of an op uses number k = stream.offset + i, which is lane k % 4 of Philox block k / 4
// (kernels/common/philox.h). Computing the block once per four elements instead of once per
// element makes the random ops about 4x cheaper; the numbers are the same. Blocks are independent,
// so the loop over them is parallel and each element is still written by exactly one thread.
#pragma once
#include <cstdint>

#include "kernels/common/philox.h"
#include "kernels/common/random_formulas.h"
#include "kernels/cpu/parallel.h"

namespace ll::kernels::cpu {

// For every i in [0, n): fn(i, r), where r is the value that `block4(b).v[lane]` gives for the
// number k = offset + i (b = k / 4, lane = k % 4). block4 maps a block index to an f::Float4,
// e.g. f::philox_uniform4 or f::philox_normal4 bound to a seed and subsequence.
template <typename Block4, typename Fn>
void for_each_philox_number(int64_t n, uint64_t offset, Block4 block4, Fn fn) {
  if (n <= 0) return;
  const uint64_t end = offset + static_cast<uint64_t>(n);  // one past the last number used
  const uint64_t first_block = offset >> 2;
  const int64_t blocks = static_cast<int64_t>(((end - 1) >> 2) - first_block + 1);
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t b = 0; b < blocks; ++b) {
    const uint64_t block = first_block + static_cast<uint64_t>(b);
    const f::Float4 r = block4(block);
    for (uint32_t lane = 0; lane < 4; ++lane) {
      const uint64_t k = 4 * block + lane;
      if (k < offset || k >= end) continue;  // the partial first and last blocks
      fn(static_cast<int64_t>(k - offset), r.v[lane]);
    }
  }
}

}  // namespace ll::kernels::cpu
