// formulas.h: every per-element formula of latentlab, written once for both backends.
//
// Forward and backward of each activation, loss, the reparameterization, the KL term and the
// optimizer updates. kernels/cpu/*.cpp loop over these; kernels/cuda/*.cu launch over them.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/hd.h"

namespace ll::f {

// ---- activations --------------------------------------------------------------------------
// The derivative at the kink is taken from the right-hand side for x > 0 only, as PyTorch does:
// relu'(0) = 0, leaky_relu'(0) = slope.
// NaN propagates as in PyTorch (x <= 0 is false for NaN). The products of the leaky form are taken
// unconditionally: a conditional multiply keeps compilers from vectorizing the loop.
LL_HD float relu(float x) { return x <= 0.0f ? 0.0f : x; }
LL_HD float relu_grad(float x, float gy) { return x <= 0.0f ? 0.0f : gy; }

LL_HD float leaky_relu(float x, float slope) {
  const float neg = x * slope;
  return x > 0.0f ? x : neg;
}
LL_HD float leaky_relu_grad(float x, float gy, float slope) {
  const float neg = gy * slope;
  return x > 0.0f ? gy : neg;
}

// tanh and sigmoid differentiate through their output y.
LL_HD float tanh_(float x) { return tanhf(x); }
LL_HD float tanh_grad_from_y(float y, float gy) { return gy * (1.0f - y * y); }

// Numerically stable for large |x|: never evaluates exp of a large positive number.
LL_HD float sigmoid(float x) {
  if (x >= 0.0f) {
    return 1.0f / (1.0f + expf(-x));
  }
  const float e = expf(x);
  return e / (1.0f + e);
}
LL_HD float sigmoid_grad_from_y(float y, float gy) { return gy * y * (1.0f - y); }

// ---- exp and log1p that vectorize --------------------------------------------------------------
// Calls into libm (expf, logf) keep compilers from vectorizing a loop; these two are plain
// arithmetic, branch-free, and accurate to 2 ulp over their ranges (tests/kernels/test_math.cpp
// checks every case against float64). They serve the hot loss of VAE training.

// exp(x) for x <= 0. Cody-Waite reduction x = n ln2 + r, |r| <= ln2 / 2 (n the nearest integer), with ln2 split into
// 0.693359375 (exact in 9 bits, so n * it is exact) - 2.12194440e-4; exp(r) by the degree-7
// minimax polynomial of the Cephes library's expf (S. L. Moshier, Cephes Math Library); 2^n built in
// the exponent bits. Below -87.3365 (where exp(x) < FLT_MIN) it returns FLT_MIN's neighbourhood
// (about 1.2e-38) instead of a subnormal: an absolute error under 1.2e-38.
LL_HD float exp_nonpositive(float x) {
  // (Comparisons instead of fmaxf / floorf: compilers vectorize those only under fast-math.)
  x = x > -87.33654f ? x : -87.33654f;
  // n = x log2(e) rounded to the nearest integer: adding and subtracting 1.5 * 2^23 rounds any
  // |v| < 2^22 exactly (floating-point contraction is off, so the two operations stay).
  const float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * (r * r) + r + 1.0f;
  // 2^n for n in [-126, 0]: the biased exponent n + 127 in bits 23..30.
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
#if defined(__CUDA_ARCH__)
  const float two_n = __int_as_float(bits);
#else
  const float two_n = __builtin_bit_cast(float, bits);  // a memcpy here would stop vectorization
#endif
  return er * two_n;
}

// log(1 + e) for e in [0, 1]. With 1 + e = 2^k (1 + f), k in {0, 1}, |f| <= sqrt(2) - 1: f = e (k = 0)
// or f = (e - 1) / 2 (k = 1), both exact in float, so no rounding of 1 + e is ever taken. Then, as in
// fdlibm's log1p (Sun Microsystems, 1993): with s = f / (2 + f), log(1 + f) = 2 atanh(s) = 2s + s R,
// R = z (2/3 + 2/5 z + 2/7 z^2 + 2/9 z^3), z = s^2 (|s| < 0.1716: the next term is below 2e-9
// relative), and since 2s = f - s f, log(1 + f) = f - s (f - R): the exact f leads and the rounding
// of s touches only the small correction. ln2 is split into a part exact in 16 bits and the rest.
LL_HD float log1p_unit(float e) {
  const bool k1 = e > 0.41421356f;
  const float f = k1 ? (e - 1.0f) * 0.5f : e;
  const float s = f / (2.0f + f);
  const float z = s * s;
  const float R = z * (0.66666669f + z * (0.40000001f + z * (0.28571430f + z * 0.22222222f)));
  const float ln2_hi = k1 ? 0.693145751953125f : 0.0f;  // 0x3f317200
  const float ln2_lo = k1 ? 1.4286067653e-06f : 0.0f;
  return ln2_hi + ((f - s * (f - R)) + ln2_lo);
}

// ---- losses (per element; the reduction scale is applied by the caller) --------------------
// Binary cross-entropy on logits x with target t in [0, 1]:
//   l = -[t log s(x) + (1-t) log(1 - s(x))] = max(x, 0) - x t + log(1 + exp(-|x|))
// (the log-sum-exp form, stable for any x); dl/dx = s(x) - t.
LL_HD float bce_with_logits(float x, float t) {
  return (x > 0.0f ? x : 0.0f) - x * t + log1p_unit(exp_nonpositive(-fabsf(x)));
}
LL_HD float bce_with_logits_grad(float x, float t) { return sigmoid(x) - t; }
// Both at once from a single exponential e = exp(-|x|): the loss as above (bit for bit), and
// sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0.
LL_HD float bce_with_logits_and_grad(float x, float t, float& grad) {
  const float e = exp_nonpositive(-fabsf(x));
  grad = (x >= 0.0f ? 1.0f : e) / (1.0f + e) - t;
  return (x > 0.0f ? x : 0.0f) - x * t + log1p_unit(e);
}

// Squared error l = (x - t)^2, dl/dx = 2 (x - t).
LL_HD float squared_error(float x, float t) {
  const float d = x - t;
  return d * d;
}
LL_HD float squared_error_grad(float x, float t) { return 2.0f * (x - t); }

// ---- VAE ------------------------------------------------------------------------------------
// Reparameterization (Kingma & Welling 2014, sec. 2.4): z = mu + sigma * eps, sigma = exp(logvar/2).
LL_HD float reparam(float mu, float logvar, float eps) { return mu + expf(0.5f * logvar) * eps; }
// dz/dlogvar = 0.5 * exp(logvar/2) * eps; dz/dmu = 1.
LL_HD float reparam_grad_logvar(float logvar, float eps, float gz) {
  return gz * 0.5f * expf(0.5f * logvar) * eps;
}

// KL(N(mu, exp(logvar)) || N(0, 1)) for one latent dimension (Kingma & Welling 2014, appendix B):
//   kl = -1/2 (1 + logvar - mu^2 - exp(logvar))
//   dkl/dmu = mu,  dkl/dlogvar = 1/2 (exp(logvar) - 1)
LL_HD float kl_normal(float mu, float logvar) {
  return -0.5f * (1.0f + logvar - mu * mu - expf(logvar));
}
LL_HD float kl_normal_grad_mu(float mu) { return mu; }
LL_HD float kl_normal_grad_logvar(float logvar) { return 0.5f * (expf(logvar) - 1.0f); }

// ---- optimizers (PyTorch semantics: torch/optim/adam.py, adamw.py, sgd.py) -------------------
// The coefficients are computed once per step, in double from the double hyperparameters, and
// rounded once (kernels/optim.h: adam_coeffs), as PyTorch's Python floats reach its float kernels.
struct AdamCoeffs {
  float one_minus_beta1;        // 1 - beta1
  float beta2;
  float one_minus_beta2;        // 1 - beta2
  float eps;
  float weight_decay;           // Adam's L2 term: g += weight_decay * p (0 for AdamW)
  float decay;                  // AdamW's decoupled decay: p *= 1 - lr * weight_decay (1 for Adam)
  float step_size;              // lr / (1 - beta1^t)
  float bias_correction2_sqrt;  // sqrt(1 - beta2^t)
};

// One Adam(W) update of a single parameter element; m and v are the moment buffers. The order of
// operations is PyTorch's single-tensor Adam: exp_avg.lerp_(g, 1 - beta1);
// exp_avg_sq.mul_(beta2).addcmul_(g, g, value=1 - beta2); denom = sqrt(v) / bc2_sqrt + eps;
// p.addcdiv_(m, denom, value=-step_size).
LL_HD void adam_update(const AdamCoeffs& c, float& p, float g, float& m, float& v) {
  p *= c.decay;
  g += c.weight_decay * p;
  m += c.one_minus_beta1 * (g - m);
  v = v * c.beta2 + c.one_minus_beta2 * g * g;
  const float denom = sqrtf(v) / c.bias_correction2_sqrt + c.eps;
  p += -c.step_size * (m / denom);
}

struct SgdCoeffs {
  float lr;
  float momentum;
  float dampening;
  float weight_decay;
  bool nesterov;
  bool first_step;  // the momentum buffer starts as the first gradient (PyTorch)
};

LL_HD void sgd_update(const SgdCoeffs& c, float& p, float g, float& buf) {
  if (c.weight_decay != 0.0f) g += c.weight_decay * p;
  if (c.momentum != 0.0f) {
    buf = c.first_step ? g : c.momentum * buf + (1.0f - c.dampening) * g;
    g = c.nesterov ? g + c.momentum * buf : buf;
  }
  p -= c.lr * g;
}

}  // namespace ll::f
