// random.h: ops that draw from a Generator (engine/rng.h). The backward of dropout and of the
// reparameterization regenerates its noise from the same Philox stream instead of storing it.
#pragma once
#include "engine/rng.h"
#include "engine/tensor.h"

namespace ll {

Tensor randn(const Shape& shape, Generator& gen, Device device = Device::CPU);  // N(0, 1)
Tensor rand(const Shape& shape, Generator& gen, Device device = Device::CPU);   // U(0, 1]
// Inverted dropout: in training, zeroes each element with probability p and scales the rest by
// 1 / (1 - p); the identity in eval mode.
Tensor dropout(const Tensor& x, float p, bool training, Generator& gen);
// z = mu + exp(logvar / 2) * eps, eps ~ N(0, I): the VAE's reparameterized sample.
Tensor reparameterize(const Tensor& mu, const Tensor& logvar, Generator& gen);

}  // namespace ll
