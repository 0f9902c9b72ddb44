// instancenorm.h: instance normalization (Ulyanov, Vedaldi & Lempitsky 2016, "Instance
// Normalization: The Missing Ingredient for Fast Stylization"), the normalization pix2pix's
// generator uses at batch size 1 (Isola et al. 2017, sec. 3.3). x is viewed as (N, C, inner),
// inner = H * W for InstanceNorm2d; the statistics are per sample and channel, over the `inner`
// values of row r = n * C + c (contiguous):
//
//   mean_r, var_r = mean and biased variance of the row,  invstd_r = 1 / sqrt(var_r + eps)
//   y = (x - mean_r) * invstd_r * gamma_c + beta_c
//
// the formulas of batch normalization (kernels/common/batchnorm_formulas.h) applied to one row, as
// PyTorch's InstanceNorm2d is batch_norm on the input reshaped to (1, N * C, H, W) with the affine
// parameters repeated N times. gamma / beta may be nullptr (affine = false, PyTorch's default for
// InstanceNorm: 1 and 0). No running statistics (PyTorch's track_running_stats = False): training
// and evaluation compute the same thing.
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>

namespace ll::kernels {

struct InstanceNormShape {
  int64_t N = 1, C = 1, inner = 1;
};

namespace cpu {
// save_mean, save_invstd: N * C floats for the backward, or nullptr (no backward will follow).
void instancenorm_forward(const InstanceNormShape& s, const float* x, const float* gamma, const float* beta,
                          float eps, float* y, float* save_mean, float* save_invstd);
// Per row r (M = inner values), with xhat = (x - mean_r) invstd_r:
//   gx = gamma_c invstd_r (gy - mean_r(gy) - xhat mean_r(gy xhat))
//   ggamma_c = sum over n and the row of gy xhat,  gbeta_c = sum over n and the row of gy
// gx, ggamma, gbeta may each be nullptr; they are overwritten, not accumulated. The sums are in
// float64, each row in index order and the rows of a channel in order of n (deterministic).
void instancenorm_backward(const InstanceNormShape& s, const float* x, const float* gy, const float* gamma,
                           const float* save_mean, const float* save_invstd, float* gx, float* ggamma,
                           float* gbeta);
}  // namespace cpu

namespace cuda {
// The CUDA twins (kernels/cuda/instancenorm.cu): the arguments of cpu::, device pointers, on `stream`.
void instancenorm_forward(const InstanceNormShape& s, const float* x, const float* gamma, const float* beta,
                          float eps, float* y, float* save_mean, float* save_invstd, Stream stream);
void instancenorm_backward(const InstanceNormShape& s, const float* x, const float* gy, const float* gamma,
                           const float* save_mean, const float* save_invstd, float* gx, float* ggamma,
                           float* gbeta, Stream stream);
}  // namespace cuda

}  // namespace ll::kernels
