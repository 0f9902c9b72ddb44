// dropout.h: inverted dropout (Srivastava et al. 2014). Element i is kept when its uniform
// u_i = philox_uniform(stream, offset + i) satisfies u_i > p; kept elements are scaled by 1 / (1 - p).
// The backward regenerates the same mask from the same stream instead of storing it.
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>

#include "kernels/common/philox.h"

namespace ll::kernels::cpu {
void dropout_forward(const float* x, float* y, int64_t n, float p, const PhiloxStream& stream);
void dropout_backward(const float* gy, float* gx, int64_t n, float p, const PhiloxStream& stream);
}  // namespace ll::kernels::cpu

namespace ll::kernels::cuda {
// The CUDA twins (kernels/cuda/dropout.cu): the arguments of cpu::, device pointers, on `stream`.
void dropout_forward(const float* x, float* y, int64_t n, float p, const PhiloxStream& philox,
                     Stream stream);
void dropout_backward(const float* gy, float* gx, int64_t n, float p, const PhiloxStream& philox,
                      Stream stream);
}  // namespace ll::kernels::cuda
