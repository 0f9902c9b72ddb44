// dropout.cu: the CUDA twins of inverted dropout (kernels/dropout.h), forward y = x * mask and
// backward gx = gy * mask, the mask regenerated from the Philox stream, never stored.
//
// Element i is kept when u_i > p, u_i the uniform number philox.offset + i of stream (seed,
// subsequence), i.e. lane (offset + i) % 4 of Philox block (offset + i) / 4 (kernels/common/philox.h),
// produced as in random.cu by curand_init(seed, subsequence, 4 * block) + curand_uniform4: the same
// uniforms as the CPU bit for bit (cuRAND's x * 2^-32 + 2^-33 with the exact power-of-two product),
// so the same mask. The value is f::dropout_apply(x, u, p, scale) of kernels/common/random_formulas.h
// (x times scale or 0, scale = 1 / (1 - p) computed once on the host as on the CPU): bit for bit the
// CPU's output.
//
// Work per call (n elements): reads 4 n bytes, writes 4 n bytes; one multiply per element and one
// Philox evaluation (about 60 integer instructions) per 4 elements. Memory-bound on an H100 apart
// from small n: 16M elements move 128 MB, about 40 us at 3.35 TB/s.
//
// Design: one thread per Philox block (grid-stride, int64 indices). When philox.offset % 4 == 0 and
// both pointers are 16-byte aligned, a whole block is one float4 load and one float4 store; else the
// block's lanes that fall in [0, n) are taken one by one (the partial first and last blocks, as on
// the CPU). Each element is written by one thread: deterministic. No __restrict__: in-place
// (y == x) is allowed, each element being read before its thread writes it.
#include "kernels/dropout.h"

#include <curand_kernel.h>

#include "kernels/common/random_formulas.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/philox.cuh"

namespace ll::kernels::cuda {

namespace {

using detail::philox_blocks;

template <bool kVec>
__global__ void __launch_bounds__(kBlock)
    dropout_kernel(const float* x, float* y, int64_t n, float p, float scale, PhiloxStream launch_ph) {
  const PhiloxStream ph = detail::at_launch(launch_ph);
  const uint64_t first = ph.offset >> 2;
  const int64_t blocks = philox_blocks(ph, n);
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < blocks; t += stride) {
    const uint64_t block = first + static_cast<uint64_t>(t);
    const float4 u = detail::block_uniform4(ph, block);
    if constexpr (kVec) {  // offset % 4 == 0: block t holds elements 4t .. 4t + 3
      if (4 * t + 4 <= n) {
        const float4 v = reinterpret_cast<const float4*>(x)[t];
        reinterpret_cast<float4*>(y)[t] =
            make_float4(f::dropout_apply(v.x, u.x, p, scale), f::dropout_apply(v.y, u.y, p, scale),
                        f::dropout_apply(v.z, u.z, p, scale), f::dropout_apply(v.w, u.w, p, scale));
        continue;
      }
    }
    detail::for_each_in_block(ph, n, block, u, [&](int64_t i, float ui) {
      y[i] = f::dropout_apply(x[i], ui, p, scale);
    });
  }
}

// Forward and backward are the same map (the backward multiplies gy by the forward's mask).
void dropout_apply(const float* x, float* y, int64_t n, float p, const PhiloxStream& ph,
                   Stream stream) {
  if (n <= 0) return;
  const float scale = f::dropout_scale(p);
  const int64_t blocks = philox_blocks(ph, n);
  if (ph.offset % 4 == 0 && aligned16(x) && aligned16(y)) {
    dropout_kernel<true><<<grid_for(blocks), kBlock, 0, stream>>>(x, y, n, p, scale, ph);
  } else {
    dropout_kernel<false><<<grid_for(blocks), kBlock, 0, stream>>>(x, y, n, p, scale, ph);
  }
  LL_CUDA_CHECK_LAUNCH();
}

}  // namespace

void dropout_forward(const float* x, float* y, int64_t n, float p, const PhiloxStream& philox,
                     Stream stream) {
  dropout_apply(x, y, n, p, philox, stream);
}

void dropout_backward(const float* gy, float* gx, int64_t n, float p, const PhiloxStream& philox,
                      Stream stream) {
  dropout_apply(gy, gx, n, p, philox, stream);
}

}  // namespace ll::kernels::cuda
