// loss.cpp: CPU reference of the losses (kernels/loss.h), with PyTorch's reductions:
// BCEWithLogitsLoss and MSELoss divide by the element count for 'mean', CrossEntropyLoss by the
// number of rows N. Forward sums go through deterministic_sum (float64 chunks in index order), so
// the loss does not depend on the thread count; backwards are element-wise and overwrite gx.
#include "kernels/loss.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/common/formulas.h"
#include "kernels/common/softmax_formulas.h"
#include "kernels/cpu/parallel.h"

namespace ll::kernels::cpu {

namespace {

// 1 for Sum, 1/count for Mean. In double: count may exceed 2^24. count == 0 with Mean gives NaN,
// as torch's mean over an empty tensor does.
double reduction_scale(Reduction r, int64_t count) {
  return r == Reduction::Mean ? 1.0 / static_cast<double>(count) : 1.0;
}

// gout * dl/dx multiplier of the backward, rounded once to float.
float grad_scale(Reduction r, int64_t count, float gout) {
  return static_cast<float>(static_cast<double>(gout) * reduction_scale(r, count));
}

// A label outside [0, C) would read outside the row; refuse it before any thread starts.
void check_labels(const int32_t* labels, int64_t N, int64_t C) {
  for (int64_t n = 0; n < N; ++n) {
    if (labels[n] < 0 || labels[n] >= C) {
      throw std::out_of_range("softmax_cross_entropy: label " + std::to_string(labels[n]) +
                              " of row " + std::to_string(n) + " is outside [0, " +
                              std::to_string(C) + ")");
    }
  }
}

// Row n's maximum and log(sum exp(l - max)); the sum in double.
struct RowStats {
  float max;
  double log_sum;
};
RowStats row_stats(const float* row, int64_t C) {
  float m = row[0];
  for (int64_t c = 1; c < C; ++c) m = row[c] > m ? row[c] : m;
  double s = 0.0;
  for (int64_t c = 0; c < C; ++c) s += static_cast<double>(f::softmax_shifted_exp(row[c], m));
  return {m, std::log(s)};
}

}  // namespace

void bce_with_logits_forward(const float* x, const float* target, int64_t n, Reduction r,
                             float* loss) {
  // Terms a chunk at a time in a vectorized loop, summed in order (deterministic_sum_chunks).
  const double sum = deterministic_sum_chunks(n, [=](int64_t begin, int64_t end, float* terms) {
    // Local restrict copies of the captures: otherwise the compiler reloads them from the closure
    // after every store (they might alias) and will not vectorize.
    const float* __restrict xs = x + begin;
    const float* __restrict ts = target + begin;
    float* __restrict out = terms;
    const int64_t len = end - begin;
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) out[i] = f::bce_with_logits(xs[i], ts[i]);
  });
  *loss = static_cast<float>(sum * reduction_scale(r, n));
}

void bce_with_logits_backward(const float* x, const float* target, int64_t n, Reduction r,
                              float gout, float* gx) {
  const float k = grad_scale(r, n, gout);
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) gx[i] = f::bce_with_logits_grad(x[i], target[i]) * k;
}

void bce_with_logits_fused(const float* x, const float* target, int64_t n, Reduction r, float* loss, float* gx) {
  if (!gx) {
    bce_with_logits_forward(x, target, n, r, loss);
    return;
  }
  const float k = grad_scale(r, n, 1.0f);
  // One vectorized pass per chunk writes the loss terms and the gradient; the chunks partition
  // 0..n-1, so each gx[i] is written once.
  const double sum = deterministic_sum_chunks(n, [=](int64_t begin, int64_t end, float* terms) {
    const float* __restrict xs = x + begin;  // restrict locals: see bce_with_logits_forward
    const float* __restrict ts = target + begin;
    float* __restrict out = terms;
    float* __restrict gs = gx + begin;
    const int64_t len = end - begin;
#pragma omp simd
    for (int64_t i = 0; i < len; ++i) {
      float g;
      out[i] = f::bce_with_logits_and_grad(xs[i], ts[i], g);
      gs[i] = g * k;
    }
  });
  *loss = static_cast<float>(sum * reduction_scale(r, n));
}

void mse_forward(const float* x, const float* target, int64_t n, Reduction r, float* loss) {
  const double sum = deterministic_sum(
      n, [=](int64_t i) { return static_cast<double>(f::squared_error(x[i], target[i])); });
  *loss = static_cast<float>(sum * reduction_scale(r, n));
}

void mse_backward(const float* x, const float* target, int64_t n, Reduction r, float gout,
                  float* gx) {
  const float k = grad_scale(r, n, gout);
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) gx[i] = f::squared_error_grad(x[i], target[i]) * k;
}

// logits (N, C), labels (N).
void bce_with_logits_elementwise(const float* x, const float* target, int64_t n, float* out) {
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) out[i] = f::bce_with_logits(x[i], target[i]);
}

void mse_elementwise(const float* x, const float* target, int64_t n, float* out) {
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) out[i] = f::squared_error(x[i], target[i]);
}

void softmax_cross_entropy_forward(const float* logits, const int32_t* labels, int64_t N, int64_t C,
                                   Reduction r, float* loss) {
  check_labels(labels, N, C);
  const double sum = deterministic_sum(N, [=](int64_t n) {
    const float* row = logits + n * C;
    const RowStats st = row_stats(row, C);
    return f::softmax_ce_row_loss(st.max, st.log_sum, row[labels[n]]);
  });
  *loss = static_cast<float>(sum * reduction_scale(r, N));
}

void softmax_cross_entropy_backward(const float* logits, const int32_t* labels, int64_t N,
                                    int64_t C, Reduction r, float gout, float* gx) {
  check_labels(labels, N, C);
  const float k = grad_scale(r, N, gout);
#pragma omp parallel for if (N * C >= kParallelGrain)
  for (int64_t n = 0; n < N; ++n) {
    const float* row = logits + n * C;
    float* grow = gx + n * C;
    const RowStats st = row_stats(row, C);
    const float log_sum = static_cast<float>(st.log_sum);
    for (int64_t c = 0; c < C; ++c) {
      grow[c] = f::softmax_ce_grad(row[c], st.max, log_sum, c == labels[n]) * k;
    }
  }
}

}  // namespace ll::kernels::cpu
