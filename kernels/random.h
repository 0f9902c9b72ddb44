// random.h: fills from the Philox stream (kernels/common/philox.h). Element i uses number
// stream.offset + i, so the same stream gives the same tensor on every backend.
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>

#include "kernels/common/philox.h"

namespace ll::kernels::cpu {
// y[i] = lo + (hi - lo) * u_i, u_i in (0, 1]
void fill_uniform(float* y, int64_t n, float lo, float hi, const PhiloxStream& stream);
// y[i] = mean + std * z_i, z_i standard normal (curand_normal4 layout)
void fill_normal(float* y, int64_t n, float mean, float std, const PhiloxStream& stream);
}  // namespace ll::kernels::cpu

namespace ll::kernels::cuda {
// The CUDA twins (kernels/cuda/random.cu): the arguments of cpu::, device pointers, on `stream`.
void fill_uniform(float* y, int64_t n, float lo, float hi, const PhiloxStream& philox,
                  Stream stream);
void fill_normal(float* y, int64_t n, float mean, float std, const PhiloxStream& philox,
                 Stream stream);
}  // namespace ll::kernels::cuda
