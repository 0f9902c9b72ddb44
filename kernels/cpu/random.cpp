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

}  // namespace ll::kernels::cpu
