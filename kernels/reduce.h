// reduce.h: deterministic sums. The summation order is fixed by the sizes alone (fixed-size
// chunks summed in float64, then the chunk sums in index order), never by the thread count or timing.
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>

namespace ll::kernels::cpu {
// out[0] = sum_i x[i]
void sum_all(const float* x, int64_t n, float* out);
// x viewed as (outer, mid, inner): y[o, i] = sum_m x[o, m, i]  (y is (outer, inner))
void sum_dim(const float* x, float* y, int64_t outer, int64_t mid, int64_t inner);
// Backward of sum_dim: gx[o, m, i] = gy[o, i]
void broadcast_dim(const float* gy, float* gx, int64_t outer, int64_t mid, int64_t inner);
}  // namespace ll::kernels::cpu

namespace ll::kernels::cuda {
// The CUDA twins (kernels/cuda/reduce.cu): the arguments of cpu::, device pointers, on `stream`.
void sum_all(const float* x, int64_t n, float* out, Stream stream);
void sum_dim(const float* x, float* y, int64_t outer, int64_t mid, int64_t inner, Stream stream);
void broadcast_dim(const float* gy, float* gx, int64_t outer, int64_t mid, int64_t inner,
                   Stream stream);
}  // namespace ll::kernels::cuda
