// im2col.cu: the column matrix of a convolution, its adjoint col2im, and the image gather of the
// weight gradient, on the GPU (see kernels/cuda/im2col.cuh for the layouts).
//
// Per chunk of G images (C channels H x W in, P x Q out, kernel R x S):
//   im2col         reads <= 4 G C H W bytes (each pixel R S / (stride_h stride_w) times, mostly
//                  from L1/L2), writes 4 G C R S P Q bytes; no FLOPs.
//   col2im         reads 4 G C R S P Q bytes, writes 4 G C H W; G C R S P Q adds.
//   gather_images  reads and writes 4 G K P Q bytes (scatter_images the same, plus the bias).
// All memory-bound: the column matrix's size is the cost.
//
// Design: one thread per (image, channel, output pixel) for im2col, writing that pixel's R S taps
// (consecutive threads take consecutive q, so each tap row of col is written coalesced). In the
// wide layout (images side by side in a row, image_stride < ld) the images are the next index
// after the pixel (thread order q, p, j, c): consecutive threads then write one contiguous run of
// G P Q floats per tap row even when P Q is small (a 4x4 or 1x1 output), where the batched order
// (q, p, c, j) would write runs of only P Q floats, R S ld apart. One
// thread per input pixel for col2im, which gathers the taps that read the pixel: for tap r, the
// output row is p = (h + pad_h - r) / stride_h when that divides exactly and p < P (same for s).
// The taps are added in the CPU's order (r ascending, then s), starting from 0, in float, so with
// equal column matrices the result is bit-identical to kernels/cpu/im2col.h's col2im. No thread
// writes what another writes: no atomics, deterministic. Flat indices are 64-bit (grid-stride
// loops); the per-pixel geometry is 32-bit (check_conv bounds the sizes by 2^30).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/im2col.cuh"

namespace ll::kernels::cuda::detail {

namespace {

struct Geom {
  int C, H, W, R, S, stride_h, stride_w, pad_h, pad_w, P, Q;
};

Geom geom(const Conv2dShape& s) {
  Geom g;
  g.C = static_cast<int>(s.C);
  g.H = static_cast<int>(s.H);
  g.W = static_cast<int>(s.W);
  g.R = static_cast<int>(s.R);
  g.S = static_cast<int>(s.S);
  g.stride_h = static_cast<int>(s.stride_h);
  g.stride_w = static_cast<int>(s.stride_w);
  g.pad_h = static_cast<int>(s.pad_h);
  g.pad_w = static_cast<int>(s.pad_w);
  g.P = static_cast<int>(s.P());
  g.Q = static_cast<int>(s.Q());
  return g;
}

__global__ void im2col_kernel(Geom g, const float* __restrict__ x, int64_t G,
                              float* __restrict__ col, int64_t ld, int64_t image_stride,
                              bool images_inner) {
  const int64_t total = G * g.C * g.P * g.Q;
  const int64_t plane = int64_t{g.H} * g.W;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{blockDim.x} * gridDim.x) {
    int64_t t = idx;
    const int q = static_cast<int>(t % g.Q);
    t /= g.Q;
    const int p = static_cast<int>(t % g.P);
    t /= g.P;
    int c;
    int64_t j;
    if (images_inner) {  // idx = ((c G + j) P + p) Q + q
      j = t % G;
      c = static_cast<int>(t / G);
    } else {  // idx = ((j C + c) P + p) Q + q
      c = static_cast<int>(t % g.C);
      j = t / g.C;
    }
    const float* xc = x + (j * g.C + c) * plane;  // x[j, c] (H, W)
    float* dst = col + j * image_stride + int64_t{c} * g.R * g.S * ld + int64_t{p} * g.Q + q;
    const int h0 = p * g.stride_h - g.pad_h, w0 = q * g.stride_w - g.pad_w;
    for (int r = 0; r < g.R; ++r) {
      const int h = h0 + r;
      const bool h_in = h >= 0 && h < g.H;
      for (int s = 0; s < g.S; ++s) {
        const int w = w0 + s;
        const float v = (h_in && w >= 0 && w < g.W) ? xc[int64_t{h} * g.W + w] : 0.0f;
        dst[int64_t{r * g.S + s} * ld] = v;
      }
    }
  }
}

__global__ void col2im_kernel(Geom g, const float* __restrict__ col, int64_t G, int64_t ld,
                              int64_t image_stride, float* __restrict__ gx) {
  const int64_t total = G * g.C * g.H * g.W;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{blockDim.x} * gridDim.x) {
    int64_t t = idx;
    const int w = static_cast<int>(t % g.W);
    t /= g.W;
    const int h = static_cast<int>(t % g.H);
    t /= g.H;
    const int c = static_cast<int>(t % g.C);
    const int64_t j = t / g.C;
    const float* src = col + j * image_stride + int64_t{c} * g.R * g.S * ld;
    float acc = 0.0f;
    for (int r = 0; r < g.R; ++r) {
      const int hp = h + g.pad_h - r;  // = p stride_h for the output row p that reads h with tap r
      if (hp < 0) break;               // hp only decreases with r
      if (hp % g.stride_h != 0) continue;
      const int p = hp / g.stride_h;
      if (p >= g.P) continue;
      for (int s = 0; s < g.S; ++s) {
        const int wp = w + g.pad_w - s;
        if (wp < 0) break;
        if (wp % g.stride_w != 0) continue;
        const int q = wp / g.stride_w;
        if (q >= g.Q) continue;
        acc += src[int64_t{r * g.S + s} * ld + int64_t{p} * g.Q + q];
      }
    }
    gx[idx] = acc;  // idx = ((j C + c) H + h) W + w
  }
}

__global__ void gather_images_kernel(const float* __restrict__ src, int64_t G, int64_t K,
                                     int64_t PQ, float* __restrict__ dst) {
  const int64_t total = G * K * PQ;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{blockDim.x} * gridDim.x) {
    // dst[k, j PQ + pq] = src[j, k, pq]
    const int64_t pq = idx % PQ, t = idx / PQ;
    const int64_t j = t % G, k = t / G;
    dst[idx] = src[(j * K + k) * PQ + pq];
  }
}

__global__ void scatter_images_kernel(const float* __restrict__ src, int64_t G, int64_t K,
                                      int64_t PQ, const float* __restrict__ bias,
                                      float* __restrict__ dst) {
  const int64_t total = G * K * PQ;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{blockDim.x} * gridDim.x) {
    // dst[j, k, pq] = src[k, j PQ + pq] (+ bias[k])
    const int64_t pq = idx % PQ, t = idx / PQ;
    const int64_t k = t % K, j = t / K;
    float v = src[(k * G + j) * PQ + pq];
    if (bias != nullptr) v += bias[k];
    dst[idx] = v;
  }
}

}  // namespace

void im2col(const Conv2dShape& s, const float* x, int64_t G, float* col, int64_t ld,
            int64_t image_stride, Stream stream) {
  const Geom g = geom(s);
  const int64_t total = G * g.C * g.P * g.Q;
  if (total == 0) return;
  const bool images_inner = image_stride < ld;  // the wide layout with G > 1
  im2col_kernel<<<grid_for(total), kBlock, 0, stream>>>(g, x, G, col, ld, image_stride,
                                                        images_inner);
  LL_CUDA_CHECK_LAUNCH();
}

void col2im(const Conv2dShape& s, const float* col, int64_t G, int64_t ld, int64_t image_stride,
            float* gx, Stream stream) {
  const Geom g = geom(s);
  const int64_t total = G * g.C * g.H * g.W;
  if (total == 0) return;
  col2im_kernel<<<grid_for(total), kBlock, 0, stream>>>(g, col, G, ld, image_stride, gx);
  LL_CUDA_CHECK_LAUNCH();
}

void gather_images(const float* src, int64_t G, int64_t K, int64_t PQ, float* dst, Stream stream) {
  const int64_t total = G * K * PQ;
  if (total == 0) return;
  gather_images_kernel<<<grid_for(total), kBlock, 0, stream>>>(src, G, K, PQ, dst);
  LL_CUDA_CHECK_LAUNCH();
}

void scatter_images(const float* src, int64_t G, int64_t K, int64_t PQ, const float* bias,
                    float* dst, Stream stream) {
  const int64_t total = G * K * PQ;
  if (total == 0) return;
  scatter_images_kernel<<<grid_for(total), kBlock, 0, stream>>>(src, G, K, PQ, bias, dst);
  LL_CUDA_CHECK_LAUNCH();
}

}  // namespace ll::kernels::cuda::detail
