// batchnorm_formulas.h: the per-channel and per-element arithmetic of batch normalization
// (Ioffe & Szegedy 2015, "Batch Normalization", Algorithm 1 and sec. 3), written once for both
// backends. The channel statistics themselves are reductions and live in the backend loops
// (kernels/cpu/batchnorm.cpp sums in float64); everything computed from them is here.
//
// Semantics follow PyTorch (torch.nn.BatchNorm1d/2d docs and
// aten/src/ATen/native/Normalization.cpp): the batch is normalized with the biased variance, the
// running variance is updated with the unbiased one, and invstd = 1 / sqrt(var + eps).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/hd.h"

namespace ll::f {

// ---- per channel (the CPU computes these in double; float on the GPU is also fine) ----------
LL_HD double bn_invstd(double var, double eps) { return 1.0 / sqrt(var + eps); }

// running = (1 - momentum) running + momentum * stat (PyTorch's exponential moving average).
LL_HD double bn_running_update(double running, double stat, double momentum) {
  return (1.0 - momentum) * running + momentum * stat;
}

// Bessel's correction for the running variance: var_biased * M / (M - 1) over M values.
// M == 1 has no unbiased estimate; PyTorch's modules refuse such a batch in training ("Expected
// more than 1 value per channel"), so the engine must too. Here it returns the biased value (0)
// rather than NaN so that a caller that forgot does not poison its running buffers.
LL_HD double bn_unbiased_var(double biased_var, int64_t M) {
  return M > 1 ? biased_var * static_cast<double>(M) / static_cast<double>(M - 1) : biased_var;
}

// ---- per element ------------------------------------------------------------------------------
// xhat = (x - mean) * invstd. Subtracting first keeps the precision when |mean| >> std
// (the folded form x * a + b loses it).
LL_HD float bn_xhat(float x, float mean, float invstd) { return (x - mean) * invstd; }

// y = xhat * gamma + beta
LL_HD float bn_forward(float x, float mean, float invstd, float gamma, float beta) {
  return bn_xhat(x, mean, invstd) * gamma + beta;
}

// Training-mode input gradient, through the batch mean and variance:
//   gx = gamma invstd / M * (M gy - sum gy - xhat sum(gy xhat))
//      = gamma invstd * (gy - mean_gy - xhat * mean_gy_xhat)
// with mean_gy = sum(gy) / M and mean_gy_xhat = sum(gy xhat) / M = ggamma / M. The second form
// avoids the cancellation of the large terms M gy and sum gy when gy has a mean. `scale` is
// gamma * invstd of the channel.
LL_HD float bn_backward_train_gx(float gy, float xhat, float mean_gy, float mean_gy_xhat,
                                 float scale) {
  return (gy - mean_gy - xhat * mean_gy_xhat) * scale;
}

}  // namespace ll::f
