// batchnorm.h: batch normalization (Ioffe & Szegedy 2015) over a tensor viewed as (N, C, inner):
// BatchNorm1d on (N, C) has inner = 1 (or L for (N, C, L)), BatchNorm2d on (N, C, H, W) inner = H*W.
// Statistics are per channel c over the N * inner values.
//
// Training:  mean_c, var_c = biased variance of the batch; y = (x - mean) * invstd * gamma + beta,
//            invstd = 1 / sqrt(var + eps). With running buffers given:
//            running_mean = (1 - momentum) running_mean + momentum * mean
//            running_var  = (1 - momentum) running_var  + momentum * var * M / (M - 1), M = N * inner
//            (PyTorch: the running variance is unbiased, the normalization uses the biased one).
// Eval:      y = (x - running_mean) / sqrt(running_var + eps) * gamma + beta.
// gamma / beta may be nullptr (affine = false: 1 and 0). In training, running_mean / running_var
// may be nullptr (track_running_stats = False) and so may save_mean / save_invstd (no backward
// will follow). M = 1 has no unbiased variance: PyTorch's modules reject such a batch in training,
// and the engine must; the kernel then updates running_var with the biased value (0), not NaN.
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>

namespace ll::kernels {

struct BatchNormShape {
  int64_t N = 1, C = 1, inner = 1;
};

namespace cpu {
void batchnorm_forward_train(const BatchNormShape& s, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* running_mean,
                             float* running_var, float* y, float* save_mean, float* save_invstd);
void batchnorm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y);
// Gradients through the batch statistics:
//   xhat = (x - mean) invstd,  ggamma_c = sum gy xhat,  gbeta_c = sum gy,
//   gx = gamma invstd / M * (M gy - gbeta_c - xhat ggamma_c)
// ggamma / gbeta may be nullptr; they are overwritten, not accumulated. gx may be nullptr too
// (only the affine parameters need gradients). All channel sums are deterministic (float64).
void batchnorm_backward_train(const BatchNormShape& s, const float* x, const float* gy,
                              const float* gamma, const float* save_mean, const float* save_invstd,
                              float* gx, float* ggamma, float* gbeta);
// Eval mode is an affine map: gx = gy * gamma / sqrt(running_var + eps); ggamma = sum gy * xhat.
void batchnorm_backward_eval(const BatchNormShape& s, const float* x, const float* gy,
                             const float* gamma, const float* running_mean,
                             const float* running_var, float eps, float* gx, float* ggamma,
                             float* gbeta);
// Synchronized batch normalization (several processes, each holding a shard of the batch;
// engine/ops/norm.h sync_batch_norm) splits the training op at its two channel reductions, so that
// the processes can combine their per-channel figures between the passes.
// batchnorm_moments: the shard's statistics, mean[c] and the biased variance var[c] over its M = N * inner values
// (two-pass, float64, as batchnorm_forward_train; 0 and 0 for an empty shard). The processes merge
// their (M, mean, var) triples into the batch's (Chan, Golub & LeVeque 1979), and each normalizes
// its shard with batchnorm_forward_eval given the batch's mean and biased variance.
void batchnorm_moments(const BatchNormShape& s, const float* x, float* mean, float* var);
// Training-mode gx from the batch's channel figures: mean (float), invstd = float(1 / sqrt(var +
// eps)) as batchnorm_forward_eval computes it, and mean_gy[c] = sum gy / M_batch,
// mean_gy_xhat[c] = sum gy xhat / M_batch over every process's shard (each shard's two sums are
// batchnorm_backward_eval's gbeta and ggamma given the batch's mean and var):
//   gx = gamma invstd (gy - mean_gy - xhat mean_gy_xhat)
void batchnorm_backward_input(const BatchNormShape& s, const float* x, const float* gy,
                              const float* gamma, const float* mean, const float* var, float eps,
                              const float* mean_gy, const float* mean_gy_xhat, float* gx);
}  // namespace cpu

namespace cuda {
// The CUDA twins (kernels/cuda/batchnorm.cu): the arguments of cpu::, device pointers, on `stream`.
void batchnorm_forward_train(const BatchNormShape& s, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* running_mean,
                             float* running_var, float* y, float* save_mean, float* save_invstd,
                             Stream stream);
void batchnorm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y, Stream stream);
void batchnorm_backward_train(const BatchNormShape& s, const float* x, const float* gy,
                              const float* gamma, const float* save_mean, const float* save_invstd,
                              float* gx, float* ggamma, float* gbeta, Stream stream);
void batchnorm_backward_eval(const BatchNormShape& s, const float* x, const float* gy,
                             const float* gamma, const float* running_mean,
                             const float* running_var, float eps, float* gx, float* ggamma,
                             float* gbeta, Stream stream);
void batchnorm_moments(const BatchNormShape& s, const float* x, float* mean, float* var,
                       Stream stream);
void batchnorm_backward_input(const BatchNormShape& s, const float* x, const float* gy,
                              const float* gamma, const float* mean, const float* var, float eps,
                              const float* mean_gy, const float* mean_gy_xhat, float* gx,
                              Stream stream);
}  // namespace cuda

}  // namespace ll::kernels
