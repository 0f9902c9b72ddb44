// optim.h: optimizer updates over one parameter tensor. Formulas in kernels/common/formulas.h
// (ll::f::adam_update, ll::f::sgd_update), with PyTorch's semantics.
#pragma once
#include "kernels/cuda_runtime.h"
#include <cmath>
#include <cstdint>

#include "kernels/common/formulas.h"

namespace ll::kernels {

// Adam(W)'s coefficients for step t (1, 2, ...), from the hyperparameters as PyTorch holds them
// (Python floats, i.e. double): every coefficient is computed in double and rounded to float once.
// So 1 - beta2 is float(1 - 0.999) = 0.001f, not 1 - 0.999f = 0.00099998713f, and the moments match
// PyTorch's exp_avg / exp_avg_sq to float rounding.
inline f::AdamCoeffs adam_coeffs(double lr, double beta1, double beta2, double eps, double weight_decay,
                                 bool decoupled, int64_t t) {
  f::AdamCoeffs c{};
  c.one_minus_beta1 = static_cast<float>(1.0 - beta1);
  c.beta2 = static_cast<float>(beta2);
  c.one_minus_beta2 = static_cast<float>(1.0 - beta2);
  c.eps = static_cast<float>(eps);
  c.weight_decay = decoupled ? 0.0f : static_cast<float>(weight_decay);
  c.decay = decoupled ? static_cast<float>(1.0 - lr * weight_decay) : 1.0f;
  c.step_size = static_cast<float>(lr / (1.0 - std::pow(beta1, static_cast<double>(t))));
  c.bias_correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(beta2, static_cast<double>(t))));
  return c;
}

namespace cpu {
void adam_step(const f::AdamCoeffs& c, float* p, const float* g, float* m, float* v, int64_t n);
// buf may be nullptr when c.momentum == 0; with momentum it throws std::invalid_argument.
void sgd_step(const f::SgdCoeffs& c, float* p, const float* g, float* buf, int64_t n);
}  // namespace cpu

namespace cuda {
// The CUDA twins (kernels/cuda/optim.cu): the arguments of cpu::, device pointers, on `stream`.
void adam_step(const f::AdamCoeffs& c, float* p, const float* g, float* m, float* v, int64_t n,
               Stream stream);
// Throws std::invalid_argument, as the CPU does, when c.momentum != 0 and buf is nullptr.
void sgd_step(const f::SgdCoeffs& c, float* p, const float* g, float* buf, int64_t n,
              Stream stream);

// One parameter tensor of a multi-tensor update: device pointers to its n values, its gradient and
// its two moment buffers.
struct AdamTensor {
  float* p;
  const float* g;
  float* m;
  float* v;
  int64_t n;
};
// adam_step over `count` tensors (a host array of AdamTensor) with the same coefficients, in one
// kernel launch per 48 tensors instead of one per tensor; each element's result is bitwise that of
// adam_step. Tensors with n == 0 are skipped. The array may be reused as soon as this returns.
// coeffs_device: when non-null, the kernels read the coefficients from this device memory when they
// run, and `c` is unused (a step captured in a CUDA graph, engine/cuda_graph.h).
void adam_step_multi(const f::AdamCoeffs& c, const AdamTensor* tensors, int64_t count, Stream stream,
                     const f::AdamCoeffs* coeffs_device = nullptr);
}  // namespace cuda

}  // namespace ll::kernels
