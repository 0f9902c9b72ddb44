// bias.h: per-channel bias over a tensor viewed as (N, C, inner).
//   Linear: (batch, features, 1); Conv2d: (N, C, H*W).
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>

namespace ll::kernels::cpu {
// y[n, c, i] += b[c]
void bias_add(float* y, const float* b, int64_t N, int64_t C, int64_t inner);
// gb[c] = sum over n, i of gy[n, c, i]   (overwrites gb; fixed summation order: deterministic)
void bias_backward(const float* gy, float* gb, int64_t N, int64_t C, int64_t inner);
}  // namespace ll::kernels::cpu

namespace ll::kernels::cuda {
// The CUDA twins (kernels/cuda/bias.cu): the arguments of cpu::, device pointers, on `stream`.
void bias_add(float* y, const float* b, int64_t N, int64_t C, int64_t inner, Stream stream);
void bias_backward(const float* gy, float* gb, int64_t N, int64_t C, int64_t inner, Stream stream);
}  // namespace ll::kernels::cuda
