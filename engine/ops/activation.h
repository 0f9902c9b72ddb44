// activation.h: pointwise nonlinearities (formulas in kernels/common/formulas.h).
#pragma once
#include "engine/tensor.h"

namespace ll {

Tensor relu(const Tensor& x);
Tensor leaky_relu(const Tensor& x, float negative_slope = 0.01f);  // PyTorch's default slope
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);

}  // namespace ll
