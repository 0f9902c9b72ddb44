// random.cpp: CPU reference of the random fills (kernels/random.h). Element i takes number
// stream.offset + i of the Philox stream (seed, subsequence); the values are the same as
// philox_uniform / philox_normal of kernels/common/philox.h, computed a block of four at a time.
#include "kernels/random.h"

#include "kernels/common/random_formulas.h"
#include "kernels/cpu/philox_loop.h"

namespace ll::kernels::cpu {

void fill_uniform(float* y, int64_t n, float lo, float hi, const PhiloxStream& stream) {
  const float range = hi - lo;
  for_each_philox_number(
      n, stream.offset,
      [&](uint64_t block) { return f::philox_uniform4(stream.seed, stream.subsequence, block); },
      [&](int64_t i, float u) { y[i] = f::uniform_affine(u, lo, range); });
}

void fill_normal(float* y, int64_t n, float mean, float std, const PhiloxStream& stream) {
  for_each_philox_number(
      n, stream.offset,
      [&](uint64_t block) { return f::philox_normal4(stream.seed, stream.subsequence, block); },
      [&](int64_t i, float z) { y[i] = f::normal_affine(z, mean, std); });
}

// One number at a time: this is the reference the block-at-a-time paths and the GPU are checked
// against, so it stays the plain per-number formula.
void philox_raw(uint32_t* out, int64_t n, const PhiloxStream& stream) {
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    out[i] = ll::philox_raw(stream.seed, stream.subsequence, stream.offset + static_cast<uint64_t>(i));
  }
}

}  // namespace ll::kernels::cpu
