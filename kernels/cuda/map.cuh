// map.cuh (internal to kernels/cuda): the generic elementwise maps y = op(x) and y = op(a, b) that
// the activations (activation.cu) and the small arithmetic (elementwise.cu) share: one thread per 4
// elements with float4 loads and stores when every pointer is 16-byte aligned (the n % 4 tail one
// by one), one element per thread otherwise; grid-stride loops with 64-bit indices. Each output
// element is written by the one thread that read its inputs, so in-place use (y == x, y == a) is
// allowed and the result is deterministic. No __restrict__, for that reason.
#pragma once
#include <cstdint>

#include "kernels/cuda/common.cuh"

namespace ll::kernels::cuda::detail {

// kVec: the float4 path (all pointers 16-byte aligned). Thread t takes float4 number t, t + stride,
// ...; then the tail elements 4 * (n / 4) + t for t < n % 4.
template <bool kVec, typename Op>
__global__ void __launch_bounds__(kBlock) map1_kernel(const float* x, float* y, int64_t n, Op op) {
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if constexpr (kVec) {
    const int64_t n4 = n >> 2;
    const float4* x4 = reinterpret_cast<const float4*>(x);
    float4* y4 = reinterpret_cast<float4*>(y);
    for (int64_t j = i; j < n4; j += stride) {
      const float4 v = x4[j];
      y4[j] = make_float4(op(v.x), op(v.y), op(v.z), op(v.w));
    }
    i += 4 * n4;
  }
  for (; i < n; i += stride) y[i] = op(x[i]);
}

template <bool kVec, typename Op>
__global__ void __launch_bounds__(kBlock)
    map2_kernel(const float* a, const float* b, float* y, int64_t n, Op op) {
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if constexpr (kVec) {
    const int64_t n4 = n >> 2;
    const float4* a4 = reinterpret_cast<const float4*>(a);
    const float4* b4 = reinterpret_cast<const float4*>(b);
    float4* y4 = reinterpret_cast<float4*>(y);
    for (int64_t j = i; j < n4; j += stride) {
      const float4 u = a4[j], v = b4[j];
      y4[j] = make_float4(op(u.x, v.x), op(u.y, v.y), op(u.z, v.z), op(u.w, v.w));
    }
    i += 4 * n4;
  }
  for (; i < n; i += stride) y[i] = op(a[i], b[i]);
}

template <typename Op>
void map1(const float* x, float* y, int64_t n, Op op, Stream stream) {
  if (n <= 0) return;
  if (aligned16(x) && aligned16(y)) {
    map1_kernel<true><<<grid_for((n + 3) / 4), kBlock, 0, stream>>>(x, y, n, op);
  } else {
    map1_kernel<false><<<grid_for(n), kBlock, 0, stream>>>(x, y, n, op);
  }
  LL_CUDA_CHECK_LAUNCH();
}

template <typename Op>
void map2(const float* a, const float* b, float* y, int64_t n, Op op, Stream stream) {
  if (n <= 0) return;
  if (aligned16(a) && aligned16(b) && aligned16(y)) {
    map2_kernel<true><<<grid_for((n + 3) / 4), kBlock, 0, stream>>>(a, b, y, n, op);
  } else {
    map2_kernel<false><<<grid_for(n), kBlock, 0, stream>>>(a, b, y, n, op);
  }
  LL_CUDA_CHECK_LAUNCH();
}

}  // namespace ll::kernels::cuda::detail
