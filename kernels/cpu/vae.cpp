// vae.cpp: CPU reference of the VAE kernels (kernels/vae.h): the reparameterized sample and the
// fused KL term with its gradients. Formulas in kernels/common/formulas.h (Kingma & Welling 2014).
#include "kernels/vae.h"

#include "kernels/common/formulas.h"
#include "kernels/common/random_formulas.h"
#include "kernels/cpu/parallel.h"
#include "kernels/cpu/philox_loop.h"

namespace ll::kernels::cpu {

// mu, logvar, z: n values each (a (B, latent) batch flattened). eps_i is normal number
// offset + i of the stream, never stored.
void reparam_forward(const float* mu, const float* logvar, float* z, int64_t n,
                     const PhiloxStream& stream) {
  for_each_philox_number(
      n, stream.offset,
      [&](uint64_t block) { return f::philox_normal4(stream.seed, stream.subsequence, block); },
      [&](int64_t i, float eps) { z[i] = f::reparam(mu[i], logvar[i], eps); });
}

// dz/dmu = 1, dz/dlogvar = 0.5 exp(logvar / 2) eps with the forward's eps regenerated.
void reparam_backward(const float* logvar, const float* gz, float* gmu, float* glogvar, int64_t n,
                      const PhiloxStream& stream) {
  if (gmu != nullptr) {
#pragma omp parallel for if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) gmu[i] = gz[i];
  }
  if (glogvar == nullptr) return;
  for_each_philox_number(
      n, stream.offset,
      [&](uint64_t block) { return f::philox_normal4(stream.seed, stream.subsequence, block); },
      [&](int64_t i, float eps) { glogvar[i] = f::reparam_grad_logvar(logvar[i], eps, gz[i]); });
}

// One pass: the summation term of element i also writes its two gradients. deterministic_sum calls
// term(i) exactly once per i, each from one thread, so the writes do not race, and the sum keeps
// its fixed order.
void kl_normal_fused(const float* mu, const float* logvar, int64_t n, float weight, float* loss,
                     float* gmu, float* glogvar) {
  const double sum = deterministic_sum(n, [=](int64_t i) {
    if (gmu != nullptr) gmu[i] = weight * f::kl_normal_grad_mu(mu[i]);
    if (glogvar != nullptr) glogvar[i] = weight * f::kl_normal_grad_logvar(logvar[i]);
    return static_cast<double>(f::kl_normal(mu[i], logvar[i]));
  });
  *loss = static_cast<float>(static_cast<double>(weight) * sum);
}

void kl_normal_elementwise(const float* mu, const float* logvar, int64_t n, float weight, float* out) {
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) out[i] = weight * f::kl_normal(mu[i], logvar[i]);
}

}  // namespace ll::kernels::cpu
