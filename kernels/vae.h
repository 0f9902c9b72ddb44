// vae.h: the two VAE-specific kernels.
//
// Reparameterized sampling z = mu + exp(logvar / 2) * eps, eps_i = philox_normal(stream, offset + i);
// the backward regenerates eps from the same stream.
//
// Fused KL: one pass over (mu, logvar) computes
//   loss = weight * sum_i kl_normal(mu_i, logvar_i)
// and, when gmu / glogvar are given, the gradients weight * dkl/dmu, weight * dkl/dlogvar, which
// the autograd op later scales by the upstream gradient. `weight` carries beta and any 1/N.
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>

#include "kernels/common/philox.h"

namespace ll::kernels::cpu {
void reparam_forward(const float* mu, const float* logvar, float* z, int64_t n,
                     const PhiloxStream& stream);
// gmu = gz; glogvar = gz * 0.5 * exp(logvar / 2) * eps
void reparam_backward(const float* logvar, const float* gz, float* gmu, float* glogvar, int64_t n,
                      const PhiloxStream& stream);
// Deterministic sum (float64 chunks in index order). gmu, glogvar may be nullptr.
void kl_normal_fused(const float* mu, const float* logvar, int64_t n, float weight, float* loss,
                     float* gmu, float* glogvar);
// The per-element terms (Reduction::None): out[i] = weight * kl_normal(mu_i, logvar_i).
void kl_normal_elementwise(const float* mu, const float* logvar, int64_t n, float weight, float* out);
}  // namespace ll::kernels::cpu

namespace ll::kernels::cuda {
// The CUDA twins (kernels/cuda/vae.cu): the arguments of cpu::, device pointers, on `stream`.
void reparam_forward(const float* mu, const float* logvar, float* z, int64_t n,
                     const PhiloxStream& philox, Stream stream);
void reparam_backward(const float* logvar, const float* gz, float* gmu, float* glogvar, int64_t n,
                      const PhiloxStream& philox, Stream stream);
void kl_normal_fused(const float* mu, const float* logvar, int64_t n, float weight, float* loss,
                     float* gmu, float* glogvar, Stream stream);
void kl_normal_elementwise(const float* mu, const float* logvar, int64_t n, float weight, float* out, Stream stream);
}  // namespace ll::kernels::cuda
