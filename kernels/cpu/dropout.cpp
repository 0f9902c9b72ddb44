// dropout.cpp: CPU reference of inverted dropout (kernels/dropout.h). The mask is never stored:
// element i is kept when u_i = philox_uniform(seed, subsequence, offset + i) > p, and the backward
// recomputes u_i from the same stream.
#include "kernels/dropout.h"

#include "kernels/common/random_formulas.h"
#include "kernels/cpu/philox_loop.h"

namespace ll::kernels::cpu {

void dropout_forward(const float* x, float* y, int64_t n, float p, const PhiloxStream& stream) {
  const float scale = f::dropout_scale(p);
  for_each_philox_number(
      n, stream.offset,
      [&](uint64_t block) { return f::philox_uniform4(stream.seed, stream.subsequence, block); },
      [&](int64_t i, float u) { y[i] = f::dropout_apply(x[i], u, p, scale); });
}

// dy/dx is the same mask times the same scale, so gx = dropout_apply(gy) with the forward's u.
void dropout_backward(const float* gy, float* gx, int64_t n, float p, const PhiloxStream& stream) {
  const float scale = f::dropout_scale(p);
  for_each_philox_number(
      n, stream.offset,
      [&](uint64_t block) { return f::philox_uniform4(stream.seed, stream.subsequence, block); },
      [&](int64_t i, float u) { gx[i] = f::dropout_apply(gy[i], u, p, scale); });
}

}  // namespace ll::kernels::cpu
