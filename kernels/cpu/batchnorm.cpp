// batchnorm.cpp: CPU reference of batch normalization (kernels/batchnorm.h).
//
// x is (N, C, inner); channel c owns N rows of `inner` contiguous floats, row n starting at
// x + (n * C + c) * inner, M = N * inner values in all. Each op is two phases:
//   1. per channel (parallel over channels): the sums, in float64, by deterministic_sum over the N
//      rows (each row summed in index order), so the statistics do not depend on the thread count;
//   2. per element (parallel over the N * C rows): the formulas of
//   kernels/common/batchnorm_formulas.h
//      with the channel's scalars.
// PyTorch semantics (aten/src/ATen/native/Normalization.cpp): two-pass mean and biased variance in
// double, invstd = 1 / sqrt(var + eps), unbiased variance in the running buffer.
#include "kernels/batchnorm.h"

#include <vector>

#include "kernels/common/batchnorm_formulas.h"
#include "kernels/cpu/parallel.h"

namespace ll::kernels::cpu {

namespace {

// sum over the M values of channel c of term(j), j the flat index into the (N, C, inner) tensor.
template <typename Term>
double channel_sum(const BatchNormShape& s, int64_t c, Term term) {
  return deterministic_sum(s.N, [&](int64_t n) {
    const int64_t base = (n * s.C + c) * s.inner;
    double r = 0.0;
    for (int64_t i = 0; i < s.inner; ++i) r += term(base + i);
    return r;
  });
}

// Phase 1 runs over channels in parallel when there are several and enough work; a single channel
// leaves the parallelism to deterministic_sum over its rows. Either way the sums are the same.
bool parallel_channels(const BatchNormShape& s) {
  return s.C > 1 && s.N * s.C * s.inner >= kParallelGrain;
}

// Phase 2: fn(c, base) for each of the N * C rows; the row's `inner` values start at base.
template <typename Fn>
void for_each_row(const BatchNormShape& s, Fn fn) {
  const int64_t rows = s.N * s.C;
#pragma omp parallel for if (rows * s.inner >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) fn(r % s.C, r * s.inner);
}

}  // namespace

void batchnorm_forward_train(const BatchNormShape& s, const float* x, const float* gamma,
                             const float* beta, float eps, float momentum, float* running_mean,
                             float* running_var, float* y, float* save_mean, float* save_invstd) {
  const int64_t M = s.N * s.inner;
  // The per-channel mean and invstd in float are what phase 2 and the backward use; keep them in
  // the caller's save buffers, or locally when the caller does not need them (no_grad).
  std::vector<float> local;
  if (save_mean == nullptr || save_invstd == nullptr) {
    local.resize(static_cast<size_t>(2 * s.C));
    save_mean = local.data();
    save_invstd = local.data() + s.C;
  }
#pragma omp parallel for if (parallel_channels(s))
  for (int64_t c = 0; c < s.C; ++c) {
    const double mean = channel_sum(s, c, [x](int64_t j) { return static_cast<double>(x[j]); }) /
                        static_cast<double>(M);
    const double var = channel_sum(s, c,
                                   [x, mean](int64_t j) {
                                     const double d = static_cast<double>(x[j]) - mean;
                                     return d * d;
                                   }) /
                       static_cast<double>(M);
    save_mean[c] = static_cast<float>(mean);
    save_invstd[c] = static_cast<float>(f::bn_invstd(var, eps));
    if (running_mean != nullptr) {
      running_mean[c] = static_cast<float>(f::bn_running_update(running_mean[c], mean, momentum));
    }
    if (running_var != nullptr) {
      running_var[c] = static_cast<float>(
          f::bn_running_update(running_var[c], f::bn_unbiased_var(var, M), momentum));
    }
  }
  for_each_row(s, [&](int64_t c, int64_t base) {
    const float g = gamma != nullptr ? gamma[c] : 1.0f;
    const float b = beta != nullptr ? beta[c] : 0.0f;
    const float mean = save_mean[c], invstd = save_invstd[c];
    for (int64_t i = base; i < base + s.inner; ++i) y[i] = f::bn_forward(x[i], mean, invstd, g, b);
  });
}

void batchnorm_forward_eval(const BatchNormShape& s, const float* x, const float* gamma,
                            const float* beta, const float* running_mean, const float* running_var,
                            float eps, float* y) {
  for_each_row(s, [&](int64_t c, int64_t base) {
    const float g = gamma != nullptr ? gamma[c] : 1.0f;
    const float b = beta != nullptr ? beta[c] : 0.0f;
    const float invstd = static_cast<float>(f::bn_invstd(running_var[c], eps));
    const float mean = running_mean[c];
    for (int64_t i = base; i < base + s.inner; ++i) y[i] = f::bn_forward(x[i], mean, invstd, g, b);
  });
}

void batchnorm_backward_train(const BatchNormShape& s, const float* x, const float* gy,
                              const float* gamma, const float* save_mean, const float* save_invstd,
                              float* gx, float* ggamma, float* gbeta) {
  const int64_t M = s.N * s.inner;
  // Per channel: mean(gy) and mean(gy * xhat), the two terms the batch statistics add to gx.
  std::vector<float> means(static_cast<size_t>(2 * s.C));
  float* mean_gy = means.data();
  float* mean_gy_xhat = means.data() + s.C;
#pragma omp parallel for if (parallel_channels(s))
  for (int64_t c = 0; c < s.C; ++c) {
    const float mean = save_mean[c], invstd = save_invstd[c];
    const double sum_gy = channel_sum(s, c, [gy](int64_t j) { return static_cast<double>(gy[j]); });
    const double sum_gy_xhat = channel_sum(s, c, [&](int64_t j) {
      return static_cast<double>(gy[j]) * static_cast<double>(f::bn_xhat(x[j], mean, invstd));
    });
    if (ggamma != nullptr) ggamma[c] = static_cast<float>(sum_gy_xhat);
    if (gbeta != nullptr) gbeta[c] = static_cast<float>(sum_gy);
    mean_gy[c] = static_cast<float>(sum_gy / static_cast<double>(M));
    mean_gy_xhat[c] = static_cast<float>(sum_gy_xhat / static_cast<double>(M));
  }
  if (gx == nullptr) return;  // only the affine parameters need gradients
  for_each_row(s, [&](int64_t c, int64_t base) {
    const float mean = save_mean[c], invstd = save_invstd[c];
    const float scale = (gamma != nullptr ? gamma[c] : 1.0f) * invstd;
    for (int64_t i = base; i < base + s.inner; ++i) {
      gx[i] = f::bn_backward_train_gx(gy[i], f::bn_xhat(x[i], mean, invstd), mean_gy[c],
                                      mean_gy_xhat[c], scale);
    }
  });
}

void batchnorm_backward_eval(const BatchNormShape& s, const float* x, const float* gy,
                             const float* gamma, const float* running_mean,
                             const float* running_var, float eps, float* gx, float* ggamma,
                             float* gbeta) {
  // The running statistics are constants here, so gx is gy times the channel's scale.
  if (ggamma != nullptr || gbeta != nullptr) {
#pragma omp parallel for if (parallel_channels(s))
    for (int64_t c = 0; c < s.C; ++c) {
      const float mean = running_mean[c];
      const float invstd = static_cast<float>(f::bn_invstd(running_var[c], eps));
      if (ggamma != nullptr) {
        ggamma[c] = static_cast<float>(channel_sum(s, c, [&](int64_t j) {
          return static_cast<double>(gy[j]) * static_cast<double>(f::bn_xhat(x[j], mean, invstd));
        }));
      }
      if (gbeta != nullptr) {
        gbeta[c] = static_cast<float>(
            channel_sum(s, c, [gy](int64_t j) { return static_cast<double>(gy[j]); }));
      }
    }
  }
  if (gx != nullptr) {
    for_each_row(s, [&](int64_t c, int64_t base) {
      const float invstd = static_cast<float>(f::bn_invstd(running_var[c], eps));
      const float scale = (gamma != nullptr ? gamma[c] : 1.0f) * invstd;
      for (int64_t i = base; i < base + s.inner; ++i) gx[i] = gy[i] * scale;
    });
  }
}

void batchnorm_moments(const BatchNormShape& s, const float* x, float* mean, float* var) {
  const int64_t M = s.N * s.inner;
#pragma omp parallel for if (parallel_channels(s))
  for (int64_t c = 0; c < s.C; ++c) {
    if (M == 0) {
      mean[c] = var[c] = 0.0f;
      continue;
    }
    const double m = channel_sum(s, c, [x](int64_t j) { return static_cast<double>(x[j]); }) /
                     static_cast<double>(M);
    const double v = channel_sum(s, c,
                                 [x, m](int64_t j) {
                                   const double d = static_cast<double>(x[j]) - m;
                                   return d * d;
                                 }) /
                     static_cast<double>(M);
    mean[c] = static_cast<float>(m);
    var[c] = static_cast<float>(v);
  }
}

void batchnorm_backward_input(const BatchNormShape& s, const float* x, const float* gy,
                              const float* gamma, const float* mean, const float* var, float eps,
                              const float* mean_gy, const float* mean_gy_xhat, float* gx) {
  for_each_row(s, [&](int64_t c, int64_t base) {
    const float invstd = static_cast<float>(f::bn_invstd(var[c], eps));
    const float scale = (gamma != nullptr ? gamma[c] : 1.0f) * invstd;
    for (int64_t i = base; i < base + s.inner; ++i) {
      gx[i] = f::bn_backward_train_gx(gy[i], f::bn_xhat(x[i], mean[c], invstd), mean_gy[c],
                                      mean_gy_xhat[c], scale);
    }
  });
}

}  // namespace ll::kernels::cpu
