// instancenorm.cpp: CPU reference of instance normalization (kernels/instancenorm.h).
//
// x is (N, C, inner); row r = n * C + c holds `inner` contiguous floats. The forward and the
// row sums of the backward run over rows in parallel, each row summed in float64 in index order
// (two passes: mean, then the squared deviations, as PyTorch's CPU batch_norm), so the results do
// not depend on the thread count. The per-element arithmetic is batch normalization's
// (kernels/common/batchnorm_formulas.h) with the row's scalars.
#include "kernels/instancenorm.h"

#include <vector>

#include "kernels/common/batchnorm_formulas.h"
#include "kernels/cpu/parallel.h"

namespace ll::kernels::cpu {

void instancenorm_forward(const InstanceNormShape& s, const float* x, const float* gamma, const float* beta,
                          float eps, float* y, float* save_mean, float* save_invstd) {
  const int64_t rows = s.N * s.C;
#pragma omp parallel for if (rows * s.inner >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * s.inner;
    double sum = 0.0;
    for (int64_t i = 0; i < s.inner; ++i) sum += static_cast<double>(xr[i]);
    const double mean = sum / static_cast<double>(s.inner);
    double m2 = 0.0;
    for (int64_t i = 0; i < s.inner; ++i) {
      const double d = static_cast<double>(xr[i]) - mean;
      m2 += d * d;
    }
    const float meanf = static_cast<float>(mean);
    const float invstd = static_cast<float>(f::bn_invstd(m2 / static_cast<double>(s.inner), eps));
    if (save_mean != nullptr) save_mean[r] = meanf;
    if (save_invstd != nullptr) save_invstd[r] = invstd;
    const int64_t c = r % s.C;
    const float g = gamma != nullptr ? gamma[c] : 1.0f;
    const float b = beta != nullptr ? beta[c] : 0.0f;
    float* yr = y + r * s.inner;
    for (int64_t i = 0; i < s.inner; ++i) yr[i] = f::bn_forward(xr[i], meanf, invstd, g, b);
  }
}

void instancenorm_backward(const InstanceNormShape& s, const float* x, const float* gy, const float* gamma,
                           const float* save_mean, const float* save_invstd, float* gx, float* ggamma,
                           float* gbeta) {
  const int64_t rows = s.N * s.C;
  // Per row: sum gy and sum gy * xhat (float64), kept for the per-channel sums over n.
  std::vector<double> sum_gy(static_cast<size_t>(rows)), sum_gy_xhat(static_cast<size_t>(rows));
#pragma omp parallel for if (rows * s.inner >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * s.inner;
    const float* gr = gy + r * s.inner;
    const float mean = save_mean[r], invstd = save_invstd[r];
    double a = 0.0, b = 0.0;
    for (int64_t i = 0; i < s.inner; ++i) {
      a += static_cast<double>(gr[i]);
      b += static_cast<double>(gr[i]) * static_cast<double>(f::bn_xhat(xr[i], mean, invstd));
    }
    sum_gy[static_cast<size_t>(r)] = a;
    sum_gy_xhat[static_cast<size_t>(r)] = b;
    if (gx == nullptr) continue;
    const float mean_gy = static_cast<float>(a / static_cast<double>(s.inner));
    const float mean_gy_xhat = static_cast<float>(b / static_cast<double>(s.inner));
    const float scale = (gamma != nullptr ? gamma[r % s.C] : 1.0f) * invstd;
    float* gxr = gx + r * s.inner;
    for (int64_t i = 0; i < s.inner; ++i) {
      gxr[i] = f::bn_backward_train_gx(gr[i], f::bn_xhat(xr[i], mean, invstd), mean_gy, mean_gy_xhat, scale);
    }
  }
  for (int64_t c = 0; c < s.C; ++c) {
    double a = 0.0, b = 0.0;
    for (int64_t n = 0; n < s.N; ++n) {
      a += sum_gy[static_cast<size_t>(n * s.C + c)];
      b += sum_gy_xhat[static_cast<size_t>(n * s.C + c)];
    }
    if (gbeta != nullptr) gbeta[c] = static_cast<float>(a);
    if (ggamma != nullptr) ggamma[c] = static_cast<float>(b);
  }
}

}  // namespace ll::kernels::cpu
