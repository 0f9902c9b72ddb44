// init.h: parameter initializations, as torch.nn.init does them, drawn from a Generator.
#pragma once
#include <cstdint>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace ll::init {

void uniform_(Tensor& t, float lo, float hi, Generator& gen);
void normal_(Tensor& t, float mean, float std, Generator& gen);
// fan_in of a weight: size(1) * receptive field (PyTorch's _calculate_fan_in_and_fan_out). For a
// ConvTranspose2d weight (C_in, C_out, R, S) that is C_out * R * S, as in PyTorch.
int64_t fan_in(const Tensor& weight);
// The default of Linear, Conv2d and ConvTranspose2d: kaiming_uniform_(a = sqrt(5)), whose bound
// gain * sqrt(3 / fan_in) with gain = sqrt(2 / (1 + 5)) simplifies to 1 / sqrt(fan_in); the bias
// is U(-1/sqrt(fan_in), 1/sqrt(fan_in)) too (torch/nn/modules/linear.py reset_parameters).
void default_weight_(Tensor& weight, Generator& gen);
void default_bias_(Tensor& bias, int64_t fan_in, Generator& gen);

}  // namespace ll::init
