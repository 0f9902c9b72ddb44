// norm.h: batch and instance normalization (kernels/batchnorm.h, kernels/instancenorm.h have the
// formulas and PyTorch's rules).
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

// Instance normalization (Ulyanov et al. 2016): x is (N, C, L) or (N, C, H, W); statistics per
// sample and channel over the L or H * W values (biased variance), y = xhat * weight_c + bias_c.
// weight, bias: (C), or both undefined (affine = false). No running statistics: PyTorch's
// InstanceNorm2d with track_running_stats = False, the same in training and evaluation. Needs more
// than one value per row (PyTorch: "Expected more than 1 spatial element when training").
Tensor instance_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps = 1e-5f);

}  // namespace ll
