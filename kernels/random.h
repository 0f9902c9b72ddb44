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
// out[i] = raw 32-bit number stream.offset + i (ll::philox_raw): what curand() returns after
// curand_init(seed, subsequence, offset + i). The reference for the GPU's bit-for-bit test.
void philox_raw(uint32_t* out, int64_t n, const PhiloxStream& stream);
}  // namespace ll::kernels::cpu

namespace ll::kernels::cuda {
// The CUDA twins (kernels/cuda/random.cu): the arguments of cpu::, device pointers, on `stream`.
void fill_uniform(float* y, int64_t n, float lo, float hi, const PhiloxStream& philox,
                  Stream stream);
void fill_normal(float* y, int64_t n, float mean, float std, const PhiloxStream& philox,
                 Stream stream);
// out[i] = raw number philox.offset + i, from cuRAND's device API (curand_init + curand): equal to
// cpu::philox_raw bit for bit. For tests of the stream convention.
void philox_raw(uint32_t* out, int64_t n, const PhiloxStream& philox, Stream stream);
}  // namespace ll::kernels::cuda
