// loss.h: losses reduced to one number. Formulas in kernels/common/formulas.h.
// Reduction::Sum adds the per-element losses; Reduction::Mean divides by the element count
// (by N, the number of rows, for softmax cross-entropy), as PyTorch's reduction='sum'/'mean'.
// Forward sums are deterministic (float64 chunks in index order). Backward: gx = gout * dl/dx
// (with the 1/n for Mean), overwriting gx.
// Reduction::None (PyTorch's reduction='none') keeps the per-element losses: the *_elementwise
// kernels write out[i] = l(x[i], target[i]); their gradients are the backwards' with Reduction::Sum
// and gout = 1 (dl/dx per element), which the autograd op multiplies by the upstream gradient of
// each element. The reduced kernels take Sum or Mean only.
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>

namespace ll::kernels {

enum class Reduction { Sum, Mean, None };

namespace cpu {
void bce_with_logits_forward(const float* x, const float* target, int64_t n, Reduction r, float* loss);
void bce_with_logits_backward(const float* x, const float* target, int64_t n, Reduction r, float gout,
                              float* gx);
// Forward and backward in one pass: the loss, and (when gx is given) dloss/dx for gout = 1, which
// the caller scales by the upstream gradient. One exponential per element instead of two passes.
void bce_with_logits_fused(const float* x, const float* target, int64_t n, Reduction r, float* loss, float* gx);
void mse_forward(const float* x, const float* target, int64_t n, Reduction r, float* loss);
void mse_backward(const float* x, const float* target, int64_t n, Reduction r, float gout, float* gx);
void bce_with_logits_elementwise(const float* x, const float* target, int64_t n, float* out);
void mse_elementwise(const float* x, const float* target, int64_t n, float* out);
// logits (N, C), labels (N) in [0, C): l_n = logsumexp(logits_n) - logits_n[label_n];
// dl/dlogits = softmax(logits_n) - onehot(label_n). C >= 1. The CPU versions check the labels first
// and throw std::out_of_range naming the row (PyTorch raises on such a target too).
void softmax_cross_entropy_forward(const float* logits, const int32_t* labels, int64_t N, int64_t C,
                                   Reduction r, float* loss);
void softmax_cross_entropy_backward(const float* logits, const int32_t* labels, int64_t N, int64_t C,
                                    Reduction r, float gout, float* gx);
}  // namespace cpu

namespace cuda {
// The CUDA twins (kernels/cuda/loss.cu): the arguments of cpu::, device pointers, on `stream`.
void bce_with_logits_forward(const float* x, const float* target, int64_t n, Reduction r,
                             float* loss, Stream stream);
void bce_with_logits_backward(const float* x, const float* target, int64_t n, Reduction r,
                              float gout, float* gx, Stream stream);
void bce_with_logits_fused(const float* x, const float* target, int64_t n, Reduction r, float* loss,
                           float* gx, Stream stream);
void mse_forward(const float* x, const float* target, int64_t n, Reduction r, float* loss,
                 Stream stream);
void mse_backward(const float* x, const float* target, int64_t n, Reduction r, float gout,
                  float* gx, Stream stream);
void bce_with_logits_elementwise(const float* x, const float* target, int64_t n, float* out, Stream stream);
void mse_elementwise(const float* x, const float* target, int64_t n, float* out, Stream stream);
void softmax_cross_entropy_forward(const float* logits, const int32_t* labels, int64_t N, int64_t C,
                                   Reduction r, float* loss, Stream stream);
void softmax_cross_entropy_backward(const float* logits, const int32_t* labels, int64_t N,
                                    int64_t C, Reduction r, float gout, float* gx, Stream stream);
}  // namespace cuda

}  // namespace ll::kernels
