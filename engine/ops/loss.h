// loss.h: losses, each returning a scalar tensor (shape ()) or, with Reduction::None, per-element losses.
// Reduction::Sum adds the per-element losses, Reduction::Mean averages them (PyTorch's 'sum' and
// 'mean'); cross_entropy's Mean averages over rows, kl_normal's Mean over the batch (rows of mu).
// Reduction::None (PyTorch's 'none') returns the per-element losses in the input's shape, for
// bce_with_logits, mse_loss and kl_normal (beta * KL of each element); sum(loss, 1) of a (N, P)
// result gives one loss per row, as models/scores.h does. cross_entropy refuses None.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"
#include "kernels/loss.h"

namespace ll {

using kernels::Reduction;

// Binary cross-entropy on logits (stable log-sum-exp form). target has the shape of logits.
Tensor bce_with_logits(const Tensor& logits, const Tensor& target, Reduction r = Reduction::Mean);
Tensor mse_loss(const Tensor& x, const Tensor& target, Reduction r = Reduction::Mean);
// logits (N, C), labels N class indices in [0, C).
Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& labels, Reduction r = Reduction::Mean);
// beta * KL(N(mu, exp(logvar)) || N(0, I)) summed over latent dimensions and, by the reduction,
// summed or averaged over the batch. One fused kernel computes the value and both gradients.
Tensor kl_normal(const Tensor& mu, const Tensor& logvar, float beta = 1.0f, Reduction r = Reduction::Sum);

}  // namespace ll
