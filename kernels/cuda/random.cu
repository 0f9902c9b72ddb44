// random.cu: the CUDA twins of the random fills (kernels/random.h): fill_uniform, fill_normal,
// and philox_raw (the raw 32-bit stream, for tests), from cuRAND's device-side Philox 4x32-10.
//
// The stream layout is the one of kernels/common/philox.h, which the CPU reference follows
// (kernels/cpu/random.cpp, kernels/cpu/philox_loop.h): element i of a fill uses number
// k = philox.offset + i of stream (seed, subsequence), which is lane k % 4 of Philox block k / 4.
// On the GPU, block b is produced by
//   curand_init(seed, subsequence, 4 * b, &s);   // key = seed, counter = (b, subsequence), lane 0
//   curand_uniform4(&s) or curand_normal4(&s);   // the block's 4 lanes, as uniforms or normals
// (cuRAND device API, curand_kernel.h: curand_init sets the counter to (offset / 4, subsequence) and
// starts at lane offset % 4). A range that starts or ends inside a block uses only that block's lanes
// in range, exactly as the CPU loop does: the normals are always the Box-Muller pairs (x, y), (z, w)
// of whole blocks, so an op at offset 6 sees the same numbers as elements 6.. of an op at offset 0.
// Uniforms: cuRAND's u = x * 2^-32 + 2^-33 (the CPU's philox_to_uniform; 2^-32 is a power of two,
// so the product is exact and a fused multiply-add rounds the same): bit for bit the CPU's.
// Normals: curand_normal4 uses __sincosf (the fast hardware sine/cosine, absolute error about 2^-21
// on [-pi, pi] and somewhat more up to 2 pi) where the CPU uses sinf/cosf, so CPU and GPU normals
// agree to about 1e-5 absolute (the radius sqrt(-2 log u) is at most 6.7), not bit for bit.
// philox_raw: thread i calls curand_init(seed, subsequence, offset + i) and curand() once, which
// checks cuRAND's lane handling at every offset % 4 against ll::philox_raw.
//
// Work per call (n numbers): writes 4 n bytes; per block of 4 numbers one Philox evaluation (10
// rounds of 2 32x32->64-bit multiplies and 4 xors: about 60 integer instructions), plus for normals
// 2 logf, 2 sqrtf and 2 __sincosf. At 16M numbers the writes take ~20 us on an H100 SXM and the
// arithmetic about the same, so the fills run near the bandwidth limit or slightly below it.
//
// Design: one thread per Philox block (grid-stride, int64 block indices); each writes the block's
// numbers that fall in [0, n). When philox.offset % 4 == 0 and y is 16-byte aligned, the whole
// blocks are stored as one float4 (block t holds elements 4t .. 4t + 3); otherwise lane by lane.
// Each element is computed and written by exactly one thread from (seed, subsequence, offset):
// deterministic, and independent of the launch shape.
#include "kernels/random.h"

#include <curand_kernel.h>

#include "kernels/common/random_formulas.h"
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/philox.cuh"

namespace ll::kernels::cuda {

namespace {

using detail::block_normal4;
using detail::block_uniform4;
using detail::philox_blocks;

struct UniformFill {
  float lo, range;
  __device__ float4 numbers(const PhiloxStream& ph, uint64_t block) const { return block_uniform4(ph, block); }
  __device__ float operator()(float u) const { return f::uniform_affine(u, lo, range); }
};
struct NormalFill {
  float mean, std;
  __device__ float4 numbers(const PhiloxStream& ph, uint64_t block) const { return block_normal4(ph, block); }
  __device__ float operator()(float z) const { return f::normal_affine(z, mean, std); }
};

// Thread per Philox block t = 0 .. blocks - 1 (absolute block first + t).
template <bool kVec, typename Fill>
__global__ void __launch_bounds__(kBlock) fill_kernel(float* y, int64_t n, PhiloxStream launch_ph, Fill fill) {
  const PhiloxStream ph = detail::at_launch(launch_ph);
  const uint64_t first = ph.offset >> 2;
  const int64_t blocks = philox_blocks(ph, n);
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  for (int64_t t = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; t < blocks; t += stride) {
    const uint64_t block = first + static_cast<uint64_t>(t);
    const float4 r = fill.numbers(ph, block);
    const float4 v = make_float4(fill(r.x), fill(r.y), fill(r.z), fill(r.w));
    if constexpr (kVec) {  // offset % 4 == 0: block t holds elements 4t .. 4t + 3
      if (4 * t + 4 <= n) {
        reinterpret_cast<float4*>(y)[t] = v;
        continue;
      }
    }
    detail::for_each_in_block(ph, n, block, v, [&](int64_t i, float value) { y[i] = value; });
  }
}

template <typename Fill>
void launch_fill(float* y, int64_t n, const PhiloxStream& ph, Fill fill, Stream stream) {
  if (n <= 0) return;
  const int64_t blocks = philox_blocks(ph, n);
  if (ph.offset % 4 == 0 && aligned16(y)) {
    fill_kernel<true><<<grid_for(blocks), kBlock, 0, stream>>>(y, n, ph, fill);
  } else {
    fill_kernel<false><<<grid_for(blocks), kBlock, 0, stream>>>(y, n, ph, fill);
  }
  LL_CUDA_CHECK_LAUNCH();
}

__global__ void __launch_bounds__(kBlock) philox_raw_kernel(uint32_t* out, int64_t n, PhiloxStream launch_ph) {
  const PhiloxStream ph = detail::at_launch(launch_ph);
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += stride) {
    curandStatePhilox4_32_10_t s;
    curand_init(ph.seed, ph.subsequence, ph.offset + static_cast<uint64_t>(i), &s);
    out[i] = curand(&s);
  }
}

}  // namespace

void fill_uniform(float* y, int64_t n, float lo, float hi, const PhiloxStream& philox,
                  Stream stream) {
  launch_fill(y, n, philox, UniformFill{lo, hi - lo}, stream);
}

void fill_normal(float* y, int64_t n, float mean, float std, const PhiloxStream& philox,
                 Stream stream) {
  launch_fill(y, n, philox, NormalFill{mean, std}, stream);
}

void philox_raw(uint32_t* out, int64_t n, const PhiloxStream& philox, Stream stream) {
  if (n <= 0) return;
  philox_raw_kernel<<<grid_for(n), kBlock, 0, stream>>>(out, n, philox);
  LL_CUDA_CHECK_LAUNCH();
}

}  // namespace ll::kernels::cuda
