// instancenorm.cu: CUDA twins of instance normalization (kernels/instancenorm.h; Ulyanov et al.
// 2016) over x viewed as (N, C, inner): the forward (per-row statistics) and the backward.
// Per-element arithmetic: kernels/common/batchnorm_formulas.h, as the CPU reference.
//
// Cost, with E = N * C * inner elements: the forward reads x three times (mean, variance, y; the
// second and third reads of a 28 x 28 or 16 x 16 row hit L1/L2) and writes y: 8E bytes from DRAM
// at best, ~6 FLOPs per element. The backward reads x and gy twice and writes gx: 12E bytes,
// ~8 FLOPs per element. Memory bound; at pix2pix-28's largest InstanceNorm (64, 32, 16 x 16),
// E = 524k, about 4 MB per pass, a couple of microseconds at an H100's 3.35 TB/s, so the launch
// (~3 us) dominates. Unmeasured: this file is unverified on a GPU; tests/cuda checks it on the CPU
// emulation of CUDA (tests/emu).
//
// Design (version 1, the straightforward one; the rows of pix2pix are short, 1..256 values):
// - forward: one block of kBlock threads per row r = n * C + c (grid-stride over rows). Thread t
//   sums x[t], x[t + kBlock], ... in double; block_sum (kernels/cuda/block_sum.cuh, a fixed tree)
//   gives the row's sum, broadcast through shared memory; the same for the squared deviations
//   (two passes, as the CPU); then every thread writes its y values.
// - backward: kernel 1, one block per row: sum gy and sum gy * xhat by the same fixed trees, into
//   scratch memory as doubles (N * C each), and gx. Kernel 2, one thread per channel: the channel's
//   N row sums added in order of n (as the CPU does) give ggamma_c and gbeta_c.
// No atomics: the same inputs give the same bits on every run. The row sums are the CPU's up to
// the order of double additions (~1e-16 relative), so y and gx agree with the CPU to ~1 ulp.
#include <cmath>

#include "kernels/common/batchnorm_formulas.h"
#include "kernels/cuda/block_sum.cuh"
#include "kernels/cuda/common.cuh"
#include "kernels/instancenorm.h"

namespace ll::kernels::cuda {

namespace {

using detail::block_sum;

// The block's sum of every thread's v, returned to every thread.
__device__ __forceinline__ double block_sum_all(double v) {
  __shared__ double total;
  const double s = block_sum(v);
  if (threadIdx.x == 0) total = s;
  __syncthreads();
  const double r = total;
  __syncthreads();  // `total` may be rewritten by the next call
  return r;
}

__global__ void __launch_bounds__(kBlock)
    instancenorm_forward_kernel(InstanceNormShape s, const float* x, const float* gamma, const float* beta,
                                float eps, float* y, float* save_mean, float* save_invstd) {
  const int64_t rows = s.N * s.C;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * s.inner;
    double acc = 0.0;
    for (int64_t i = threadIdx.x; i < s.inner; i += kBlock) acc += static_cast<double>(xr[i]);
    const double mean = block_sum_all(acc) / static_cast<double>(s.inner);
    acc = 0.0;
    for (int64_t i = threadIdx.x; i < s.inner; i += kBlock) {
      const double d = static_cast<double>(xr[i]) - mean;
      acc += d * d;
    }
    const double var = block_sum_all(acc) / static_cast<double>(s.inner);
    const float meanf = static_cast<float>(mean);
    const float invstd = static_cast<float>(f::bn_invstd(var, eps));
    if (threadIdx.x == 0) {
      if (save_mean != nullptr) save_mean[r] = meanf;
      if (save_invstd != nullptr) save_invstd[r] = invstd;
    }
    const int64_t c = r % s.C;
    const float g = gamma != nullptr ? gamma[c] : 1.0f;
    const float b = beta != nullptr ? beta[c] : 0.0f;
    float* yr = y + r * s.inner;
    for (int64_t i = threadIdx.x; i < s.inner; i += kBlock) yr[i] = f::bn_forward(xr[i], meanf, invstd, g, b);
  }
}

__global__ void __launch_bounds__(kBlock)
    instancenorm_backward_rows_kernel(InstanceNormShape s, const float* x, const float* gy, const float* gamma,
                                      const float* save_mean, const float* save_invstd, float* gx,
                                      double* sum_gy, double* sum_gy_xhat) {
  const int64_t rows = s.N * s.C;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const float* xr = x + r * s.inner;
    const float* gr = gy + r * s.inner;
    const float mean = save_mean[r], invstd = save_invstd[r];
    double a = 0.0, b = 0.0;
    for (int64_t i = threadIdx.x; i < s.inner; i += kBlock) {
      a += static_cast<double>(gr[i]);
      b += static_cast<double>(gr[i]) * static_cast<double>(f::bn_xhat(xr[i], mean, invstd));
    }
    a = block_sum_all(a);
    b = block_sum_all(b);
    if (threadIdx.x == 0) {
      sum_gy[r] = a;
      sum_gy_xhat[r] = b;
    }
    if (gx == nullptr) continue;
    const float mean_gy = static_cast<float>(a / static_cast<double>(s.inner));
    const float mean_gy_xhat = static_cast<float>(b / static_cast<double>(s.inner));
    const float scale = (gamma != nullptr ? gamma[r % s.C] : 1.0f) * invstd;
    float* gxr = gx + r * s.inner;
    for (int64_t i = threadIdx.x; i < s.inner; i += kBlock) {
      gxr[i] = f::bn_backward_train_gx(gr[i], f::bn_xhat(xr[i], mean, invstd), mean_gy, mean_gy_xhat, scale);
    }
  }
}

__global__ void __launch_bounds__(kBlock)
    instancenorm_backward_channels_kernel(InstanceNormShape s, const double* sum_gy, const double* sum_gy_xhat,
                                          float* ggamma, float* gbeta) {
  for (int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; c < s.C; c += int64_t{blockDim.x} * gridDim.x) {
    double a = 0.0, b = 0.0;
    for (int64_t n = 0; n < s.N; ++n) {
      a += sum_gy[n * s.C + c];
      b += sum_gy_xhat[n * s.C + c];
    }
    if (gbeta != nullptr) gbeta[c] = static_cast<float>(a);
    if (ggamma != nullptr) ggamma[c] = static_cast<float>(b);
  }
}

}  // namespace

void instancenorm_forward(const InstanceNormShape& s, const float* x, const float* gamma, const float* beta,
                          float eps, float* y, float* save_mean, float* save_invstd, Stream stream) {
  const int64_t rows = s.N * s.C;
  if (rows == 0 || s.inner == 0) return;
  instancenorm_forward_kernel<<<grid_for(rows, 1), kBlock, 0, stream>>>(s, x, gamma, beta, eps, y, save_mean,
                                                                          save_invstd);
  LL_CUDA_CHECK_LAUNCH();
}

void instancenorm_backward(const InstanceNormShape& s, const float* x, const float* gy, const float* gamma,
                           const float* save_mean, const float* save_invstd, float* gx, float* ggamma,
                           float* gbeta, Stream stream) {
  const int64_t rows = s.N * s.C;
  if (rows == 0) return;
  DeviceScratch sums(2 * sizeof(double) * static_cast<size_t>(rows), stream);
  double* sum_gy = static_cast<double*>(sums.p);
  double* sum_gy_xhat = sum_gy + rows;
  instancenorm_backward_rows_kernel<<<grid_for(rows, 1), kBlock, 0, stream>>>(s, x, gy, gamma, save_mean,
                                                                                save_invstd, gx, sum_gy, sum_gy_xhat);
  LL_CUDA_CHECK_LAUNCH();
  if (ggamma == nullptr && gbeta == nullptr) return;
  instancenorm_backward_channels_kernel<<<grid_for(s.C), kBlock, 0, stream>>>(s, sum_gy, sum_gy_xhat, ggamma, gbeta);
  LL_CUDA_CHECK_LAUNCH();
}

}  // namespace ll::kernels::cuda
