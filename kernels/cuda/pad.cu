// pad.cu: the CUDA twins of asymmetric zero padding (kernels/pad.h) and its adjoint.
//   forward   x (N, C, H, W) -> y (N, C, P, Q), P = H + top + bottom, Q = W + left + right:
//             y[pl, p, q] = x[pl, p - top, q - left] inside the window, 0 around it
//   backward  gx[pl, h, w] = gy[pl, h + top, w + left] (the (H, W) window of gy)
//
// Work per call (planes = N C): forward reads 4 planes H W bytes and writes 4 planes P Q bytes;
// backward reads and writes 4 planes H W bytes each; no arithmetic. Memory-bound: e.g. the 128x128
// GAN's (N, 128, 128, 128) padded by (3, 4, 3, 4) writes 1.11x its input.
//
// Design: one thread per output element (y in the forward, gx in the backward), so every output is
// written exactly once (the zeros included: no separate memset) and reads are coalesced along a
// row. The (plane, row, column) of a flat index comes from divisions, done in 32-bit arithmetic
// when the tensor has fewer than 2^32 elements (several times cheaper than 64-bit on a GPU), in
// 64-bit otherwise. Grid-stride loops with int64 indices. Deterministic (pure copies).
#include "kernels/pad.h"

#include "kernels/cuda/common.cuh"

namespace ll::kernels::cuda {

namespace {

// P and Q come from the host (Pad2dShape's methods are host functions).
template <typename Idx>
__global__ void __launch_bounds__(kBlock) pad_forward_kernel(Pad2dShape s, int64_t P, int64_t Q, const float* x, float* y) {
  const int64_t total = s.N * s.C * P * Q;
  const Idx q_div = static_cast<Idx>(Q), p_div = static_cast<Idx>(P);
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total; e += stride) {
    const Idx ee = static_cast<Idx>(e);
    const Idx row = ee / q_div;  // pl * P + p
    const int64_t q = static_cast<int64_t>(ee - row * q_div);
    const Idx pl = row / p_div;
    const int64_t p = static_cast<int64_t>(row - pl * p_div);
    const int64_t h = p - s.top, w = q - s.left;
    float v = 0.0f;
    if (h >= 0 && h < s.H && w >= 0 && w < s.W) v = x[(static_cast<int64_t>(pl) * s.H + h) * s.W + w];
    y[e] = v;
  }
}

template <typename Idx>
__global__ void __launch_bounds__(kBlock) pad_backward_kernel(Pad2dShape s, int64_t P, int64_t Q, const float* gy, float* gx) {
  const int64_t total = s.N * s.C * s.H * s.W;
  const Idx w_div = static_cast<Idx>(s.W), h_div = static_cast<Idx>(s.H);
  const int64_t stride = int64_t{blockDim.x} * gridDim.x;
  for (int64_t e = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; e < total; e += stride) {
    const Idx ee = static_cast<Idx>(e);
    const Idx row = ee / w_div;  // pl * H + h
    const int64_t w = static_cast<int64_t>(ee - row * w_div);
    const Idx pl = row / h_div;
    const int64_t h = static_cast<int64_t>(row - pl * h_div);
    gx[e] = gy[(static_cast<int64_t>(pl) * P + h + s.top) * Q + w + s.left];
  }
}

}  // namespace

void pad2d_forward(const Pad2dShape& s, const float* x, float* y, Stream stream) {
  const int64_t total = s.N * s.C * s.P() * s.Q();
  if (total <= 0) return;
  if (total < (int64_t{1} << 32)) {
    pad_forward_kernel<uint32_t><<<grid_for(total), kBlock, 0, stream>>>(s, s.P(), s.Q(), x, y);
  } else {
    pad_forward_kernel<uint64_t><<<grid_for(total), kBlock, 0, stream>>>(s, s.P(), s.Q(), x, y);
  }
  LL_CUDA_CHECK_LAUNCH();
}

void pad2d_backward(const Pad2dShape& s, const float* gy, float* gx, Stream stream) {
  const int64_t total = s.N * s.C * s.H * s.W;
  if (total <= 0) return;
  if (total < (int64_t{1} << 32)) {
    pad_backward_kernel<uint32_t><<<grid_for(total), kBlock, 0, stream>>>(s, s.P(), s.Q(), gy, gx);
  } else {
    pad_backward_kernel<uint64_t><<<grid_for(total), kBlock, 0, stream>>>(s, s.P(), s.Q(), gy, gx);
  }
  LL_CUDA_CHECK_LAUNCH();
}

}  // namespace ll::kernels::cuda
