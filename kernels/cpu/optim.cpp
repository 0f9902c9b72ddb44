// optim.cpp: CPU reference of the optimizer updates (kernels/optim.h). The per-element updates are
// ll::f::adam_update / ll::f::sgd_update (PyTorch's torch/optim/adam.py, adamw.py, sgd.py); the
// caller computes the step-dependent coefficients (bias corrections, first_step) once per step.
#include "kernels/optim.h"

#include <stdexcept>

#include "kernels/cpu/parallel.h"

namespace ll::kernels::cpu {

// p, g, m, v: n values each; m and v are updated in place.
void adam_step(const f::AdamCoeffs& c, float* p, const float* g, float* m, float* v, int64_t n) {
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) f::adam_update(c, p[i], g[i], m[i], v[i]);
}

// buf is the momentum buffer; it is not touched when c.momentum == 0 and may then be nullptr.
void sgd_step(const f::SgdCoeffs& c, float* p, const float* g, float* buf, int64_t n) {
  if (buf == nullptr) {
    if (c.momentum != 0.0f)
      throw std::invalid_argument("sgd_step: momentum needs a momentum buffer");
#pragma omp parallel for if (n >= kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      float unused = 0.0f;  // sgd_update reads and writes buf only when momentum != 0
      f::sgd_update(c, p[i], g[i], unused);
    }
    return;
  }
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) f::sgd_update(c, p[i], g[i], buf[i]);
}

}  // namespace ll::kernels::cpu
