// philox.cuh (internal to kernels/cuda): the Philox 4x32-10 stream of a PhiloxStream on the GPU,
// through cuRAND's device API, for the kernels that draw random numbers (random.cu, dropout.cu,
// vae.cu). Number k of a stream is lane k % 4 of Philox block k / 4 of (seed, subsequence), as
// curand_init(seed, subsequence, k) and then curand() give it, and as kernels/common/philox.h
// computes it on the CPU; the uniforms and normals are curand_uniform4 / curand_normal4 of a block
// (docs/random.md). A kernel gives each thread whole blocks, so each number is made once.
#pragma once
#include <curand_kernel.h>

#include <cstdint>

#include "kernels/common/philox.h"

namespace ll::kernels::cuda::detail {

// The stream as the running kernel sees it: in a CUDA graph's launch, with the offset of that
// launch read from device memory (PhiloxStream::offset_device).
__device__ __forceinline__ PhiloxStream at_launch(PhiloxStream ph) {
  if (ph.offset_device != nullptr) ph.offset = *ph.offset_device;
  return ph;
}

// The 4 uniforms in (0, 1] / the 4 standard normals of Philox block `block` of the stream.
__device__ __forceinline__ float4 block_uniform4(const PhiloxStream& ph, uint64_t block) {
  curandStatePhilox4_32_10_t s;
  curand_init(ph.seed, ph.subsequence, 4 * block, &s);
  return curand_uniform4(&s);
}
__device__ __forceinline__ float4 block_normal4(const PhiloxStream& ph, uint64_t block) {
  curandStatePhilox4_32_10_t s;
  curand_init(ph.seed, ph.subsequence, 4 * block, &s);
  return curand_normal4(&s);
}

// Philox blocks that numbers offset .. offset + n - 1 touch (n >= 1): the first and last may be
// partial when offset or offset + n is not a multiple of 4.
__host__ __device__ inline int64_t philox_blocks(const PhiloxStream& ph, int64_t n) {
  const uint64_t end = ph.offset + static_cast<uint64_t>(n);
  return static_cast<int64_t>(((end - 1) >> 2) - (ph.offset >> 2) + 1);
}

// Calls f(i, value) for each lane of Philox block `block` whose number lies among the stream's n
// (offset + i, 0 <= i < n): all four lanes, but fewer in a partial first or last block. `r` holds
// the block's four values (uniforms, normals, or numbers made from them) in lane order.
template <typename F>
__device__ __forceinline__ void for_each_in_block(const PhiloxStream& ph, int64_t n, uint64_t block,
                                                  float4 r, F f) {
  const float v[4] = {r.x, r.y, r.z, r.w};
  const uint64_t end = ph.offset + static_cast<uint64_t>(n);
  for (uint32_t lane = 0; lane < 4; ++lane) {
    const uint64_t k = 4 * block + lane;
    if (k < ph.offset || k >= end) continue;
    f(static_cast<int64_t>(k - ph.offset), v[lane]);
  }
}

}  // namespace ll::kernels::cuda::detail
