// norm.h: batch normalization (kernels/batchnorm.h has the formulas and PyTorch's rules).
#pragma once
#include "engine/tensor.h"

namespace ll {

// x is (N, C), (N, C, L) or (N, C, H, W); statistics per channel (dimension 1).
// weight, bias: (C) or undefined (affine = false). running_mean, running_var: (C) buffers, updated
// in place in training mode (may be undefined: then training mode uses batch statistics only and
// eval mode is an error).
// training: normalize with the batch's statistics (biased variance) and update the running ones
// (unbiased variance, momentum as PyTorch: new = (1 - momentum) old + momentum batch).
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, float momentum = 0.1f, float eps = 1e-5f);

}  // namespace ll
