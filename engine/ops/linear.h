// linear.h: matrix products.
#pragma once
#include "engine/tensor.h"

namespace ll {

// a (M, K) @ b (K, N) -> (M, N)
Tensor matmul(const Tensor& a, const Tensor& b);
// PyTorch's F.linear: x (N, in), weight (out, in), bias (out) or undefined -> x weight^T + bias (N, out)
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

}  // namespace ll
