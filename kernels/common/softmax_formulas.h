// softmax_formulas.h: the per-element pieces of softmax cross-entropy, for both backends.
//
// For one row of logits l (C values) with label y:
//   m = max_c l_c,  s = sum_c exp(l_c - m),  logsumexp(l) = m + log s
//   loss = logsumexp(l) - l_y = (m - l_y) + log s
//   dloss/dl_c = softmax(l)_c - [c == y] = exp((l_c - m) - log s) - [c == y]
// (PyTorch's nn.CrossEntropyLoss without class weights, ignore_index or label smoothing.)
// Shifting by the row maximum keeps every exp argument <= 0, so large logits cannot overflow;
// subtracting m before log s keeps the precision when |m| is large (m + log s would round at m's
// ulp). The row reductions (max, sum) live in the backend loops.
#pragma once
#include <cmath>

#include "kernels/common/hd.h"

namespace ll::f {

// One term of s: exp(l_c - m), in (0, 1].
LL_HD float softmax_shifted_exp(float logit, float row_max) { return expf(logit - row_max); }

// The loss of one row from its reductions; double so that a long row keeps its precision.
LL_HD double softmax_ce_row_loss(float row_max, double log_sum, float label_logit) {
  return (static_cast<double>(row_max) - static_cast<double>(label_logit)) + log_sum;
}

// dloss/dl_c for one element; `log_sum` = log s of the row, `is_label` = (c == y).
LL_HD float softmax_ce_grad(float logit, float row_max, float log_sum, bool is_label) {
  return expf((logit - row_max) - log_sum) - (is_label ? 1.0f : 0.0f);
}

}  // namespace ll::f
