// optim.h: optimizer updates over one parameter tensor. Formulas in kernels/common/formulas.h
// (ll::f::adam_update, ll::f::sgd_update), with PyTorch's semantics.
#pragma once
#include <cstdint>

#include "kernels/common/formulas.h"

namespace ll::kernels::cpu {
void adam_step(const f::AdamCoeffs& c, float* p, const float* g, float* m, float* v, int64_t n);
void sgd_step(const f::SgdCoeffs& c, float* p, const float* g, float* buf, int64_t n);
}  // namespace ll::kernels::cpu
