// elementwise.h: arithmetic between tensors of the same shape, reductions, concatenation.
// (No general broadcasting: bias and per-channel terms live in linear, conv2d and batch_norm.)
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace ll {

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor scale(const Tensor& x, float alpha);     // alpha * x
Tensor add_scalar(const Tensor& x, float c);    // x + c
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);

Tensor sum(const Tensor& x);   // all elements -> shape ()
Tensor mean(const Tensor& x);  // all elements -> shape ()
// Sum over one dimension: (d0, ..., dk, ...) -> (d0, ..., ...) (keepdim keeps it as size 1).
Tensor sum(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor mean(const Tensor& x, int64_t dim, bool keepdim = false);

// Joins tensors along `dim`; all other dimensions must agree.
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
// Elements [start, start + length) of dimension `dim` (a copy; differentiable).
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator*(const Tensor& x, float alpha) { return scale(x, alpha); }
inline Tensor operator*(float alpha, const Tensor& x) { return scale(x, alpha); }
inline Tensor operator+(const Tensor& x, float c) { return add_scalar(x, c); }
inline Tensor operator-(const Tensor& x) { return neg(x); }

}  // namespace ll
