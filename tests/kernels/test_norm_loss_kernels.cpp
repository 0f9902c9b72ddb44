// test_norm_loss_kernels.cpp: the CPU BatchNorm and losses against naive float64 code written from
// the math (Ioffe & Szegedy 2015; PyTorch's BatchNorm, BCEWithLogitsLoss, MSELoss, CrossEntropyLoss
// docs), plus a float64 central finite difference of the naive BatchNorm forward.
//
// Tolerances: outputs that are a few float roundings of the exact value: atol 1e-5, rtol 1e-5.
// Sums over M terms computed from float intermediates (BatchNorm's ggamma/gbeta, losses): rtol 1e-5
// with an atol of 1e-4 for channel sums that may cancel to near zero (each term carries ~1e-7
// relative error and there are up to 16384 of them: sqrt(M) * 1e-7 * |term| ~ 1e-5).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/batchnorm.h"
#include "kernels/instancenorm.h"
#include "kernels/loss.h"
#include "tests/common/compare.h"

namespace ll::kernels {
namespace {

using test::all_close;
using test::random_vector;
using test::Tolerance;

// ---- BatchNorm: naive float64 reference -------------------------------------------------------

struct BnRef {
  std::vector<double> y, mean, var, invstd, running_mean, running_var;
};

// x (N, C, inner); gamma/beta empty means affine = false.
BnRef bn_train_ref(const BatchNormShape& s, const std::vector<double>& x,
                   const std::vector<double>& gamma, const std::vector<double>& beta, double eps,
                   double momentum, const std::vector<double>& rm0,
                   const std::vector<double>& rv0) {
  const int64_t M = s.N * s.inner;
  BnRef r;
  r.y.resize(x.size());
  r.mean.assign(s.C, 0.0);
  r.var.assign(s.C, 0.0);
  r.invstd.resize(s.C);
  r.running_mean.resize(s.C);
  r.running_var.resize(s.C);
  auto at = [&](int64_t n, int64_t c, int64_t i) { return (n * s.C + c) * s.inner + i; };
  for (int64_t c = 0; c < s.C; ++c) {
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.inner; ++i) r.mean[c] += x[at(n, c, i)];
    r.mean[c] /= M;
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.inner; ++i)
        r.var[c] += (x[at(n, c, i)] - r.mean[c]) * (x[at(n, c, i)] - r.mean[c]);
    r.var[c] /= M;  // biased: used to normalize
    r.invstd[c] = 1.0 / std::sqrt(r.var[c] + eps);
    const double g = gamma.empty() ? 1.0 : gamma[c], b = beta.empty() ? 0.0 : beta[c];
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.inner; ++i)
        r.y[at(n, c, i)] = (x[at(n, c, i)] - r.mean[c]) * r.invstd[c] * g + b;
    r.running_mean[c] = (1 - momentum) * rm0[c] + momentum * r.mean[c];
    r.running_var[c] = (1 - momentum) * rv0[c] + momentum * r.var[c] * M / (M - 1);  // unbiased
  }
  return r;
}

std::vector<double> to_double(const std::vector<float>& v) { return {v.begin(), v.end()}; }

struct BnCase {
  BatchNormShape s;
  bool affine;
};

std::string bn_name(const BatchNormShape& s) {
  return "N=" + std::to_string(s.N) + " C=" + std::to_string(s.C) +
         " inner=" + std::to_string(s.inner);
}

// The last four cases exceed kParallelGrain: channels in parallel (64x4x256, 128x400x1, 40000x2x1)
// and one channel summed in parallel inside deterministic_sum (20000x1x1).
const BnCase kBnCases[] = {
    {{2, 1, 1}, true},     {{1, 1, 2}, true},     {{2, 3, 1}, false},
    {{5, 3, 7}, true},     {{3, 2, 5}, false},    {{64, 4, 256}, true},
    {{128, 400, 1}, true}, {{20000, 1, 1}, true}, {{40000, 2, 1}, false},
};

TEST(BatchNorm, TrainForwardMatchesFloat64) {
  const float eps = 1e-5f, momentum = 0.1f;
  for (const BnCase& bc : kBnCases) {
    const BatchNormShape& s = bc.s;
    const int64_t total = s.N * s.C * s.inner;
    // A nonzero mean (3) checks the two-pass variance.
    const std::vector<float> x = random_vector(total, 101, 1.0f, 5.0f);
    const std::vector<float> gamma =
        bc.affine ? random_vector(s.C, 102, 0.5f, 1.5f) : std::vector<float>{};
    const std::vector<float> beta =
        bc.affine ? random_vector(s.C, 103, -0.5f, 0.5f) : std::vector<float>{};
    std::vector<float> rm = random_vector(s.C, 104, -0.1f, 0.1f),
                       rv = random_vector(s.C, 105, 0.5f, 1.5f);
    const BnRef r = bn_train_ref(s, to_double(x), to_double(gamma), to_double(beta), eps, momentum,
                                 to_double(rm), to_double(rv));
    std::vector<float> y(total), save_mean(s.C), save_invstd(s.C);
    cpu::batchnorm_forward_train(s, x.data(), bc.affine ? gamma.data() : nullptr,
                                 bc.affine ? beta.data() : nullptr, eps, momentum, rm.data(),
                                 rv.data(), y.data(), save_mean.data(), save_invstd.data());
    const std::string what = bn_name(s);
    EXPECT_TRUE(all_close(y, r.y, {1e-5, 1e-5}, "y " + what));
    EXPECT_TRUE(all_close(save_mean, r.mean, {1e-6, 1e-6}, "save_mean " + what));
    EXPECT_TRUE(all_close(save_invstd, r.invstd, {0, 1e-6}, "save_invstd " + what));
    EXPECT_TRUE(all_close(rm, r.running_mean, {1e-6, 1e-6}, "running_mean " + what));
    EXPECT_TRUE(all_close(rv, r.running_var, {1e-6, 1e-6}, "running_var " + what));

    // Without save buffers or running buffers (no_grad, track_running_stats=False): same y.
    std::vector<float> y2(total);
    cpu::batchnorm_forward_train(s, x.data(), bc.affine ? gamma.data() : nullptr,
                                 bc.affine ? beta.data() : nullptr, eps, momentum, nullptr, nullptr,
                                 y2.data(), nullptr, nullptr);
    EXPECT_TRUE(all_close(y2, to_double(y), {0, 0}, "y without buffers " + what));
  }
}

TEST(BatchNorm, EvalForwardMatchesFloat64) {
  const float eps = 1e-3f;
  for (const BnCase& bc : kBnCases) {
    const BatchNormShape& s = bc.s;
    const int64_t total = s.N * s.C * s.inner;
    const std::vector<float> x = random_vector(total, 111, -2.0f, 4.0f);
    const std::vector<float> gamma = random_vector(s.C, 112, 0.5f, 1.5f);
    const std::vector<float> beta = random_vector(s.C, 113, -0.5f, 0.5f);
    const std::vector<float> rm = random_vector(s.C, 114, -1.0f, 1.0f),
                             rv = random_vector(s.C, 115, 0.2f, 3.0f);
    std::vector<float> y(total);
    cpu::batchnorm_forward_eval(s, x.data(), bc.affine ? gamma.data() : nullptr,
                                bc.affine ? beta.data() : nullptr, rm.data(), rv.data(), eps,
                                y.data());
    std::vector<double> r(total);
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t i = 0; i < s.inner; ++i) {
          const int64_t j = (n * s.C + c) * s.inner + i;
          const double g = bc.affine ? gamma[c] : 1.0, b = bc.affine ? beta[c] : 0.0;
          r[j] = (x[j] - double(rm[c])) / std::sqrt(double(rv[c]) + double(eps)) * g + b;
        }
    EXPECT_TRUE(all_close(y, r, {1e-5, 1e-5}, "eval y " + bn_name(s)));
  }
}

// Analytic float64 backward through the batch statistics (Ioffe & Szegedy 2015, sec. 3):
//   gx = gamma invstd / M (M gy - sum gy - xhat sum(gy xhat)), ggamma = sum gy xhat, gbeta = sum
//   gy.
void bn_train_backward_ref(const BatchNormShape& s, const std::vector<double>& x,
                           const std::vector<double>& gy, const std::vector<double>& gamma,
                           double eps, std::vector<double>& gx, std::vector<double>& ggamma,
                           std::vector<double>& gbeta) {
  const BnRef f =
      bn_train_ref(s, x, {}, {}, eps, 0.0, std::vector<double>(s.C), std::vector<double>(s.C));
  const int64_t M = s.N * s.inner;
  gx.resize(x.size());
  ggamma.assign(s.C, 0.0);
  gbeta.assign(s.C, 0.0);
  for (int64_t c = 0; c < s.C; ++c) {
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.inner; ++i) {
        const int64_t j = (n * s.C + c) * s.inner + i;
        const double xhat = (x[j] - f.mean[c]) * f.invstd[c];
        ggamma[c] += gy[j] * xhat;
        gbeta[c] += gy[j];
      }
    const double g = gamma.empty() ? 1.0 : gamma[c];
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t i = 0; i < s.inner; ++i) {
        const int64_t j = (n * s.C + c) * s.inner + i;
        const double xhat = (x[j] - f.mean[c]) * f.invstd[c];
        gx[j] = g * f.invstd[c] / M * (M * gy[j] - gbeta[c] - xhat * ggamma[c]);
      }
  }
}

TEST(BatchNorm, TrainBackwardMatchesFloat64) {
  const float eps = 1e-5f;
  for (const BnCase& bc : kBnCases) {
    const BatchNormShape& s = bc.s;
    const int64_t total = s.N * s.C * s.inner;
    const std::vector<float> x = random_vector(total, 121, -1.0f, 3.0f);
    // gy with a nonzero mean: the terms M gy and sum gy then nearly cancel.
    const std::vector<float> gy = random_vector(total, 122, -0.5f, 1.5f);
    const std::vector<float> gamma =
        bc.affine ? random_vector(s.C, 123, 0.5f, 1.5f) : std::vector<float>{};
    std::vector<float> y(total), save_mean(s.C), save_invstd(s.C);
    cpu::batchnorm_forward_train(s, x.data(), bc.affine ? gamma.data() : nullptr, nullptr, eps,
                                 0.1f, nullptr, nullptr, y.data(), save_mean.data(),
                                 save_invstd.data());
    std::vector<float> gx(total), ggamma(s.C, 77.0f), gbeta(s.C, 77.0f);
    cpu::batchnorm_backward_train(s, x.data(), gy.data(), bc.affine ? gamma.data() : nullptr,
                                  save_mean.data(), save_invstd.data(), gx.data(), ggamma.data(),
                                  gbeta.data());
    std::vector<double> rgx, rgg, rgb;
    bn_train_backward_ref(s, to_double(x), to_double(gy), to_double(gamma), eps, rgx, rgg, rgb);
    const std::string what = bn_name(s);
    EXPECT_TRUE(all_close(gx, rgx, {1e-5, 1e-5}, "gx " + what));
    EXPECT_TRUE(all_close(gbeta, rgb, {1e-4, 1e-5}, "gbeta " + what));
    // ggamma = sum gy xhat is the exact derivative of the forward as computed, i.e. with the float
    // save_mean / save_invstd (PyTorch's backward also reads its saved float statistics). Against
    // those it is tight. Against the exact float64 statistics it differs by the rounding of the
    // saved mean (~6e-8 * |mean| * invstd per xhat, the same sign for every element) times sum gy,
    // which grows with M when gy has a mean: up to ~4e-4 at M = 16384 here, hence rtol 1e-4.
    std::vector<double> rgg_saved(s.C, 0.0);
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t i = 0; i < s.inner; ++i) {
          const int64_t j = (n * s.C + c) * s.inner + i;
          rgg_saved[c] += double(gy[j]) * (double(x[j]) - save_mean[c]) * save_invstd[c];
        }
    EXPECT_TRUE(all_close(ggamma, rgg_saved, {1e-4, 1e-5}, "ggamma (saved stats) " + what));
    EXPECT_TRUE(all_close(ggamma, rgg, {1e-4, 1e-4}, "ggamma (exact stats) " + what));
    // nullptr for the parameter gradients leaves gx unchanged.
    std::vector<float> gx2(total);
    cpu::batchnorm_backward_train(s, x.data(), gy.data(), bc.affine ? gamma.data() : nullptr,
                                  save_mean.data(), save_invstd.data(), gx2.data(), nullptr,
                                  nullptr);
    EXPECT_TRUE(all_close(gx2, to_double(gx), {0, 0}, "gx without ggamma/gbeta " + what));
  }
}

// Synchronized BatchNorm's two pieces. The shard's moments are the float64 mean and biased
// variance; gx from given batch sums, with the sums of this one shard, is the training gx.
TEST(BatchNorm, MomentsMatchFloat64) {
  for (const BnCase& bc : kBnCases) {
    const BatchNormShape& s = bc.s;
    const std::vector<float> x = random_vector(s.N * s.C * s.inner, 131, 1.0f, 5.0f);
    const BnRef r = bn_train_ref(s, to_double(x), {}, {}, 1e-5, 0.0, std::vector<double>(s.C),
                                 std::vector<double>(s.C));
    std::vector<float> mean(s.C), var(s.C);
    cpu::batchnorm_moments(s, x.data(), mean.data(), var.data());
    EXPECT_TRUE(all_close(mean, r.mean, {1e-6, 1e-6}, "mean " + bn_name(s)));
    EXPECT_TRUE(all_close(var, r.var, {1e-6, 1e-6}, "var " + bn_name(s)));
  }
  // An empty shard: 0 and 0.
  std::vector<float> mean(2, 7.0f), var(2, 7.0f);
  cpu::batchnorm_moments({0, 2, 3}, nullptr, mean.data(), var.data());
  EXPECT_EQ(mean, std::vector<float>(2, 0.0f));
  EXPECT_EQ(var, std::vector<float>(2, 0.0f));
}

TEST(BatchNorm, BackwardInputFromBatchSumsMatchesFloat64) {
  const float eps = 1e-5f;
  for (const BnCase& bc : kBnCases) {
    const BatchNormShape& s = bc.s;
    const int64_t total = s.N * s.C * s.inner, M = s.N * s.inner;
    const std::vector<float> x = random_vector(total, 141, -1.0f, 3.0f);
    const std::vector<float> gy = random_vector(total, 142, -0.5f, 1.5f);
    const std::vector<float> gamma = bc.affine ? random_vector(s.C, 143, 0.5f, 1.5f) : std::vector<float>{};
    const float* gamma_p = bc.affine ? gamma.data() : nullptr;
    // What sync_batch_norm does with one process: moments, the eval backward's sums, then gx.
    std::vector<float> mean(s.C), var(s.C), sum_gy_xhat(s.C), sum_gy(s.C);
    cpu::batchnorm_moments(s, x.data(), mean.data(), var.data());
    cpu::batchnorm_backward_eval(s, x.data(), gy.data(), nullptr, mean.data(), var.data(), eps, nullptr,
                                 sum_gy_xhat.data(), sum_gy.data());
    std::vector<float> mean_gy(s.C), mean_gy_xhat(s.C), gx(total);
    for (int64_t c = 0; c < s.C; ++c) {
      mean_gy[c] = static_cast<float>(double(sum_gy[c]) / double(M));
      mean_gy_xhat[c] = static_cast<float>(double(sum_gy_xhat[c]) / double(M));
    }
    cpu::batchnorm_backward_input(s, x.data(), gy.data(), gamma_p, mean.data(), var.data(), eps,
                                  mean_gy.data(), mean_gy_xhat.data(), gx.data());
    std::vector<double> rgx, rgg, rgb;
    bn_train_backward_ref(s, to_double(x), to_double(gy), to_double(gamma), eps, rgx, rgg, rgb);
    // The sums reach gx rounded to float once more than in batchnorm_backward_train (as float
    // sums, then divided by M): about an ulp of mean_gy, which gx multiplies by gamma * invstd
    // (up to 1 / sqrt(eps) for a channel of tiny variance, such as two close values at N = 2).
    double max_invstd = 1.0;
    for (int64_t c = 0; c < s.C; ++c) max_invstd = std::max(max_invstd, 1.0 / std::sqrt(double(var[c]) + eps));
    EXPECT_TRUE(all_close(gx, rgx, {1e-6 * max_invstd, 1e-5}, "gx " + bn_name(s)));
    EXPECT_TRUE(all_close(sum_gy, rgb, {1e-4, 1e-5}, "sum gy " + bn_name(s)));
    EXPECT_TRUE(all_close(sum_gy_xhat, rgg, {1e-4, 1e-4}, "sum gy xhat " + bn_name(s)));
  }
}

// The naive forward's loss L = sum_j w_j y_j, differentiated numerically in float64 by central
// differences, against the kernel's backward with gy = w. Independent of the analytic formulas.
TEST(BatchNorm, TrainBackwardMatchesFiniteDifference) {
  const BatchNormShape s{3, 2, 4};
  const int64_t total = s.N * s.C * s.inner;
  const double eps = 1e-5;
  const std::vector<float> xf = random_vector(total, 131, -1.0f, 2.0f);
  const std::vector<float> wf = random_vector(total, 132, -1.0f, 1.0f);
  const std::vector<float> gf = random_vector(s.C, 133, 0.5f, 1.5f);
  const std::vector<float> bf = random_vector(s.C, 134, -0.5f, 0.5f);
  std::vector<double> x = to_double(xf), gamma = to_double(gf), beta = to_double(bf);
  const std::vector<double> w = to_double(wf), zeros(s.C, 0.0), ones(s.C, 1.0);
  auto loss = [&]() {
    const BnRef r = bn_train_ref(s, x, gamma, beta, eps, 0.1, zeros, ones);
    double l = 0.0;
    for (int64_t j = 0; j < total; ++j) l += w[j] * r.y[j];
    return l;
  };
  const double h = 1e-6;
  auto central = [&](std::vector<double>& v) {
    std::vector<double> g(v.size());
    for (size_t j = 0; j < v.size(); ++j) {
      const double keep = v[j];
      v[j] = keep + h;
      const double lp = loss();
      v[j] = keep - h;
      const double lm = loss();
      v[j] = keep;
      g[j] = (lp - lm) / (2 * h);
    }
    return g;
  };
  const std::vector<double> fd_x = central(x), fd_gamma = central(gamma), fd_beta = central(beta);

  std::vector<float> y(total), save_mean(s.C), save_invstd(s.C), gx(total), ggamma(s.C), gbeta(s.C);
  cpu::batchnorm_forward_train(s, xf.data(), gf.data(), bf.data(), float(eps), 0.1f, nullptr,
                               nullptr, y.data(), save_mean.data(), save_invstd.data());
  cpu::batchnorm_backward_train(s, xf.data(), wf.data(), gf.data(), save_mean.data(),
                                save_invstd.data(), gx.data(), ggamma.data(), gbeta.data());
  // The finite difference is good to ~1e-9 (h^2 truncation, 1e-16/h rounding); the float kernel to
  // ~1e-6.
  EXPECT_TRUE(all_close(gx, fd_x, {1e-5, 1e-5}, "gx vs finite difference"));
  EXPECT_TRUE(all_close(ggamma, fd_gamma, {1e-5, 1e-5}, "ggamma vs finite difference"));
  EXPECT_TRUE(all_close(gbeta, fd_beta, {1e-5, 1e-5}, "gbeta vs finite difference"));
}

TEST(BatchNorm, EvalBackwardMatchesFloat64) {
  const float eps = 1e-5f;
  for (const BnCase& bc : kBnCases) {
    const BatchNormShape& s = bc.s;
    const int64_t total = s.N * s.C * s.inner;
    const std::vector<float> x = random_vector(total, 141, -2.0f, 2.0f);
    const std::vector<float> gy = random_vector(total, 142, -1.0f, 1.0f);
    const std::vector<float> gamma = random_vector(s.C, 143, 0.5f, 1.5f);
    const std::vector<float> rm = random_vector(s.C, 144, -1.0f, 1.0f),
                             rv = random_vector(s.C, 145, 0.2f, 3.0f);
    std::vector<float> gx(total), ggamma(s.C, 77.0f), gbeta(s.C, 77.0f);
    cpu::batchnorm_backward_eval(s, x.data(), gy.data(), bc.affine ? gamma.data() : nullptr,
                                 rm.data(), rv.data(), eps, gx.data(), ggamma.data(), gbeta.data());
    std::vector<double> rgx(total), rgg(s.C, 0.0), rgb(s.C, 0.0);
    for (int64_t n = 0; n < s.N; ++n)
      for (int64_t c = 0; c < s.C; ++c)
        for (int64_t i = 0; i < s.inner; ++i) {
          const int64_t j = (n * s.C + c) * s.inner + i;
          const double invstd = 1.0 / std::sqrt(double(rv[c]) + double(eps));
          const double g = bc.affine ? gamma[c] : 1.0;
          rgx[j] = gy[j] * g * invstd;
          rgg[c] += gy[j] * (x[j] - double(rm[c])) * invstd;
          rgb[c] += gy[j];
        }
    const std::string what = bn_name(s);
    EXPECT_TRUE(all_close(gx, rgx, {1e-6, 1e-6}, "eval gx " + what));
    EXPECT_TRUE(all_close(ggamma, rgg, {1e-4, 1e-5}, "eval ggamma " + what));
    EXPECT_TRUE(all_close(gbeta, rgb, {1e-4, 1e-5}, "eval gbeta " + what));
  }
}

// ---- InstanceNorm: naive float64 reference ----------------------------------------------------
// Row r = n * C + c of x (N, C, inner) normalized by its own mean and biased variance; the
// backward written from the definition: dL/dx_j = gamma invstd (gy_j - mean(gy) - xhat_j mean(gy xhat)),
// ggamma_c = sum over n, j of gy xhat, gbeta_c = sum over n, j of gy.

struct InRef {
  std::vector<double> y, gx, ggamma, gbeta;
};

InRef in_ref(const InstanceNormShape& s, const std::vector<double>& x, const std::vector<double>& gy,
             const std::vector<double>& gamma, const std::vector<double>& beta, double eps) {
  InRef r;
  r.y.resize(x.size());
  r.gx.resize(x.size());
  r.ggamma.assign(s.C, 0.0);
  r.gbeta.assign(s.C, 0.0);
  for (int64_t n = 0; n < s.N; ++n) {
    for (int64_t c = 0; c < s.C; ++c) {
      const int64_t base = (n * s.C + c) * s.inner;
      double mean = 0, var = 0;
      for (int64_t i = 0; i < s.inner; ++i) mean += x[base + i];
      mean /= s.inner;
      for (int64_t i = 0; i < s.inner; ++i) var += (x[base + i] - mean) * (x[base + i] - mean);
      var /= s.inner;
      const double invstd = 1.0 / std::sqrt(var + eps);
      const double g = gamma.empty() ? 1.0 : gamma[c], b = beta.empty() ? 0.0 : beta[c];
      double sgy = 0, sgyx = 0;
      for (int64_t i = 0; i < s.inner; ++i) {
        const double xhat = (x[base + i] - mean) * invstd;
        r.y[base + i] = xhat * g + b;
        sgy += gy[base + i];
        sgyx += gy[base + i] * xhat;
      }
      for (int64_t i = 0; i < s.inner; ++i) {
        const double xhat = (x[base + i] - mean) * invstd;
        r.gx[base + i] = g * invstd * (gy[base + i] - sgy / s.inner - xhat * sgyx / s.inner);
      }
      r.ggamma[c] += sgyx;
      r.gbeta[c] += sgy;
    }
  }
  return r;
}

TEST(InstanceNorm, ForwardAndBackwardMatchFloat64) {
  const float eps = 1e-5f;
  // Rows of 2 values, the pix2pix generator's 16x16 and 2x2 planes, one sample, and a size above
  // kParallelGrain (rows in parallel).
  const InstanceNormShape shapes[] = {{2, 3, 2}, {4, 8, 256}, {1, 5, 4}, {3, 1, 17}, {16, 32, 64}};
  for (const InstanceNormShape& s : shapes) {
    for (bool affine : {true, false}) {
      const int64_t total = s.N * s.C * s.inner;
      const std::vector<float> x = random_vector(total, 201, 1.0f, 5.0f);  // nonzero mean: two passes
      const std::vector<float> gy = random_vector(total, 202, -0.5f, 1.5f);
      const std::vector<float> gamma = affine ? random_vector(s.C, 203, 0.5f, 1.5f) : std::vector<float>{};
      const std::vector<float> beta = affine ? random_vector(s.C, 204, -0.5f, 0.5f) : std::vector<float>{};
      const InRef r = in_ref(s, to_double(x), to_double(gy), to_double(gamma), to_double(beta), eps);
      std::vector<float> y(total), sm(s.N * s.C), si(s.N * s.C);
      cpu::instancenorm_forward(s, x.data(), affine ? gamma.data() : nullptr, affine ? beta.data() : nullptr, eps,
                                y.data(), sm.data(), si.data());
      const std::string what = "N=" + std::to_string(s.N) + " C=" + std::to_string(s.C) +
                               " inner=" + std::to_string(s.inner) + (affine ? " affine" : "");
      EXPECT_TRUE(all_close(y, r.y, {1e-5, 1e-5}, "y " + what));
      std::vector<float> gx(total), gg(s.C), gb(s.C);
      cpu::instancenorm_backward(s, x.data(), gy.data(), affine ? gamma.data() : nullptr, sm.data(), si.data(),
                                 gx.data(), gg.data(), gb.data());
      EXPECT_TRUE(all_close(gx, r.gx, {1e-5, 1e-4}, "gx " + what));
      EXPECT_TRUE(all_close(gg, r.ggamma, {1e-4, 1e-5}, "ggamma " + what));
      EXPECT_TRUE(all_close(gb, r.gbeta, {1e-5, 1e-6}, "gbeta " + what));
      // No save buffers (no_grad): the same y.
      std::vector<float> y2(total);
      cpu::instancenorm_forward(s, x.data(), affine ? gamma.data() : nullptr, affine ? beta.data() : nullptr, eps,
                                y2.data(), nullptr, nullptr);
      EXPECT_TRUE(all_close(y2, to_double(y), {0, 0}, "y without save buffers " + what));
    }
  }
}

// A per-sample statistic: changing sample 1 must not change sample 0's output (BatchNorm would).
TEST(InstanceNorm, SamplesAreIndependent) {
  const InstanceNormShape s{2, 2, 9};
  std::vector<float> x = random_vector(36, 205, -1.0f, 1.0f);
  std::vector<float> y1(36), y2(36);
  cpu::instancenorm_forward(s, x.data(), nullptr, nullptr, 1e-5f, y1.data(), nullptr, nullptr);
  for (int64_t j = 18; j < 36; ++j) x[j] = 10.0f * x[j] + 3.0f;
  cpu::instancenorm_forward(s, x.data(), nullptr, nullptr, 1e-5f, y2.data(), nullptr, nullptr);
  for (int64_t j = 0; j < 18; ++j) EXPECT_EQ(y1[j], y2[j]) << j;
  // ... and sample 1's output is (almost) unchanged too: normalization removes the affine change.
  for (int64_t j = 18; j < 36; ++j) EXPECT_NEAR(y1[j], y2[j], 1e-4) << j;
}

// ---- losses ---------------------------------------------------------------------------------

const std::vector<int64_t> kLossSizes = {1, 7, 1000, 100352 /* 128 x 784 */, 100003};

double mean_scale(Reduction r, int64_t n) { return r == Reduction::Mean ? 1.0 / n : 1.0; }
const char* rname(Reduction r) { return r == Reduction::Mean ? "mean" : "sum"; }

TEST(Loss, BceWithLogitsMatchesFloat64) {
  for (Reduction r : {Reduction::Sum, Reduction::Mean}) {
    for (int64_t n : kLossSizes) {
      std::vector<float> x = random_vector(n, 151, -8.0f, 8.0f);
      std::vector<float> t = random_vector(n, 152, 0.0f, 1.0f);
      // Saturated logits: with log(1 + exp(-|x|)) the loss stays finite and exact.
      const float extremes[] = {80.0f, -80.0f, 30.0f, -30.0f, 0.0f, 1e4f, -1e4f};
      for (int64_t i = 0; i < n && i < 7; ++i) x[i] = extremes[i];
      for (int64_t i = 0; i < n && i < 3; ++i) t[i] = i % 2 == 0 ? 0.0f : 1.0f;
      double sum = 0.0;
      std::vector<double> rg(n);
      const float gout = 0.7f;
      for (int64_t i = 0; i < n; ++i) {
        const double xd = x[i], td = t[i];
        // -[t log s(x) + (1 - t) log(1 - s(x))], with log s(x) = -log1p(exp(-x)), written stably
        const double log_s = xd >= 0 ? -std::log1p(std::exp(-xd)) : xd - std::log1p(std::exp(xd));
        const double log_1ms =
            xd >= 0 ? -xd - std::log1p(std::exp(-xd)) : -std::log1p(std::exp(xd));
        sum += -(td * log_s + (1 - td) * log_1ms);
        rg[i] = (1.0 / (1.0 + std::exp(-xd)) - td) * gout * mean_scale(r, n);
      }
      const double ref = sum * mean_scale(r, n);
      float got = NAN;
      cpu::bce_with_logits_forward(x.data(), t.data(), n, r, &got);
      const std::string what = std::string("bce ") + rname(r) + " n=" + std::to_string(n);
      EXPECT_TRUE(all_close(&got, &ref, 1, {1e-6, 1e-6}, what + " loss"));
      std::vector<float> gx(n);
      cpu::bce_with_logits_backward(x.data(), t.data(), n, r, gout, gx.data());
      // sigmoid(x) - t in float: absolute error ~1e-7 before the scale gout/n.
      EXPECT_TRUE(all_close(gx, rg, {2e-7 * gout * mean_scale(r, n), 1e-5}, what + " grad"));
      // The fused kernel: the same loss, and the gradient for gout = 1, in one pass.
      float fused = NAN;
      std::vector<float> gf(n, NAN);
      cpu::bce_with_logits_fused(x.data(), t.data(), n, r, &fused, gf.data());
      EXPECT_TRUE(all_close(&fused, &ref, 1, {1e-6, 1e-6}, what + " fused loss"));
      for (double& v : rg) v /= gout;
      EXPECT_TRUE(all_close(gf, rg, {2e-7 * mean_scale(r, n), 1e-5}, what + " fused grad"));
      float loss_only = NAN;
      cpu::bce_with_logits_fused(x.data(), t.data(), n, r, &loss_only, nullptr);
      EXPECT_EQ(loss_only, fused);
    }
  }
}

TEST(Loss, MseMatchesFloat64) {
  for (Reduction r : {Reduction::Sum, Reduction::Mean}) {
    for (int64_t n : kLossSizes) {
      const std::vector<float> x = random_vector(n, 161, -2.0f, 2.0f);
      const std::vector<float> t = random_vector(n, 162, 0.0f, 1.0f);
      const float gout = 1.3f;
      double sum = 0.0;
      std::vector<double> rg(n);
      for (int64_t i = 0; i < n; ++i) {
        const double d = double(x[i]) - t[i];
        sum += d * d;
        rg[i] = 2.0 * d * gout * mean_scale(r, n);
      }
      const double ref = sum * mean_scale(r, n);
      float got = NAN;
      cpu::mse_forward(x.data(), t.data(), n, r, &got);
      const std::string what = std::string("mse ") + rname(r) + " n=" + std::to_string(n);
      EXPECT_TRUE(all_close(&got, &ref, 1, {1e-6, 1e-6}, what + " loss"));
      std::vector<float> gx(n);
      cpu::mse_backward(x.data(), t.data(), n, r, gout, gx.data());
      EXPECT_TRUE(all_close(gx, rg, {1e-7 * mean_scale(r, n), 1e-6}, what + " grad"));
    }
  }
}

// Reference: logsumexp and softmax in float64 with the max shift.
void softmax_ce_ref(const std::vector<float>& logits, const std::vector<int32_t>& labels, int64_t N,
                    int64_t C, Reduction r, double gout, double& loss, std::vector<double>& g) {
  loss = 0.0;
  g.assign(N * C, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    const float* row = logits.data() + n * C;
    double m = row[0];
    for (int64_t c = 1; c < C; ++c) m = std::max(m, double(row[c]));
    double s = 0.0;
    for (int64_t c = 0; c < C; ++c) s += std::exp(row[c] - m);
    loss += m + std::log(s) - row[labels[n]];
    for (int64_t c = 0; c < C; ++c)
      g[n * C + c] =
          (std::exp(row[c] - m) / s - (c == labels[n] ? 1.0 : 0.0)) * gout * mean_scale(r, N);
  }
  loss *= mean_scale(r, N);
}

TEST(Loss, SoftmaxCrossEntropyMatchesFloat64) {
  struct Case {
    int64_t N, C;
    float lo, hi, shift;
  };
  const Case cases[] = {
      {1, 1, -1, 1, 0},      {1, 10, -3, 3, 0},   {3, 7, -3, 3, 0},       {128, 10, -5, 5, 0},
      {2000, 10, -5, 5, 0},  {7, 1000, -4, 4, 0}, {64, 10, -300, 300, 0}, /* large logits */
      {64, 10, -5, 5, 1e4f}, /* large common offset: the shift by the row max makes it vanish */
  };
  for (Reduction r : {Reduction::Sum, Reduction::Mean}) {
    for (const Case& k : cases) {
      std::vector<float> logits = random_vector(k.N * k.C, 171, k.lo, k.hi);
      for (float& v : logits) v += k.shift;
      std::vector<int32_t> labels(k.N);
      for (int64_t n = 0; n < k.N; ++n) labels[n] = static_cast<int32_t>((n * 7 + 3) % k.C);
      const float gout = 0.9f;
      double ref = 0.0;
      std::vector<double> rg;
      softmax_ce_ref(logits, labels, k.N, k.C, r, gout, ref, rg);
      float got = NAN;
      cpu::softmax_cross_entropy_forward(logits.data(), labels.data(), k.N, k.C, r, &got);
      const std::string what = std::string("softmax ce ") + rname(r) + " N=" + std::to_string(k.N) +
                               " C=" + std::to_string(k.C) + " range " + std::to_string(k.hi) +
                               " shift " + std::to_string(k.shift);
      // Loss rounding: float logit differences carry ~1e-7 of |l| into each row (1e-3 abs at 1e4).
      const double atol = k.shift != 0 ? 1e-3 * mean_scale(r, k.N) * k.N : 1e-5;
      EXPECT_TRUE(all_close(&got, &ref, 1, {atol, 1e-6}, what + " loss"));
      std::vector<float> gx(k.N * k.C);
      cpu::softmax_cross_entropy_backward(logits.data(), labels.data(), k.N, k.C, r, gout,
                                          gx.data());
      // Softmax probabilities in float: |error| ~1e-7 per element before the gout / N scale.
      EXPECT_TRUE(all_close(gx, rg, {5e-7 * gout * mean_scale(r, k.N), 1e-5}, what + " grad"));
    }
  }
}

TEST(Loss, SoftmaxCrossEntropyRejectsBadLabel) {
  const std::vector<float> logits(6, 0.0f);
  const int32_t labels[] = {0, 3};
  float loss = 0.0f;
  std::vector<float> gx(6);
  EXPECT_THROW(
      cpu::softmax_cross_entropy_forward(logits.data(), labels, 2, 3, Reduction::Sum, &loss),
      std::out_of_range);
  EXPECT_THROW(cpu::softmax_cross_entropy_backward(logits.data(), labels, 2, 3, Reduction::Sum,
                                                   1.0f, gx.data()),
               std::out_of_range);
}

}  // namespace
}  // namespace ll::kernels
