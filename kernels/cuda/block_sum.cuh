// block_sum.cuh (internal to kernels/cuda): the fixed-tree sum over one block of kBlock threads that
// the deterministic reductions share (reduce.cu, vae.cu): a warp shuffle tree, then thread 0 adds
// the kBlock / 32 warp sums in warp order. The tree depends on nothing but the block size, so the
// same inputs give the same bits on every run.
#pragma once
#include "kernels/cuda/common.cuh"

namespace ll::kernels::cuda::detail {

// The sum of every thread's `v`, valid in thread 0 (0 elsewhere). Every thread of the block must
// call it (it synchronizes); it may be called repeatedly, e.g. in a grid-stride loop.
__device__ inline double block_sum(double v) {
  constexpr int kWarps = kBlock / 32;
  __shared__ double warp_sums[kWarps];
  for (int d = 16; d > 0; d >>= 1) v += __shfl_down_sync(0xffffffffu, v, d);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  double s = 0.0;
  if (threadIdx.x == 0) {
    for (int w = 0; w < kWarps; ++w) s += warp_sums[w];
  }
  __syncthreads();  // warp_sums may be rewritten by the next call
  return s;
}

}  // namespace ll::kernels::cuda::detail
