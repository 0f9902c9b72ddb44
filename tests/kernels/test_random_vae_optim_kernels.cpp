// test_random_vae_optim_kernels.cpp: Philox against the Random123 known answers and cuRAND's stream
// convention, the random fills, dropout, the VAE kernels against float64, and the optimizer steps
// against PyTorch's algorithms written out by hand in float64.
//
// Tolerances: element-wise results a few float roundings from the exact value: atol 1e-6, rtol
// 1e-5. Optimizer parameters after 3 steps: atol 1e-6 (the float parameter itself rounds at 6e-8 *
// |p| per step; m and v at 1e-7 relative).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/common/philox.h"
#include "kernels/dropout.h"
#include "kernels/optim.h"
#include "kernels/random.h"
#include "kernels/vae.h"
#include "tests/common/compare.h"

namespace ll::kernels {
namespace {

using test::all_close;
using test::random_vector;
using test::Tolerance;

bool bit_equal(const float* a, const float* b, int64_t n) {
  return std::memcmp(a, b, static_cast<size_t>(n) * sizeof(float)) == 0;
}

// ---- Philox ---------------------------------------------------------------------------------

// Known-answer vectors of philox4x32 with 10 rounds, from the Random123 distribution
// (Random123-1.x/examples/kat_vectors: "philox4x32 10 <ctr x4> <key x2> <expected x4>").
TEST(Philox, Random123KnownAnswers) {
  struct Kat {
    Philox4 ctr;
    uint32_t k0, k1;
    Philox4 expected;
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, 0, 0, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
      {{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu},
       0xffffffffu,
       0xffffffffu,
       {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
      {{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u},
       0xa4093822u,
       0x299f31d0u,
       {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
  };
  for (const Kat& k : kats) {
    const Philox4 got = philox4x32_10(k.ctr, k.k0, k.k1);
    EXPECT_EQ(got.x, k.expected.x) << std::hex << "ctr.x " << k.ctr.x;
    EXPECT_EQ(got.y, k.expected.y) << std::hex << "ctr.x " << k.ctr.x;
    EXPECT_EQ(got.z, k.expected.z) << std::hex << "ctr.x " << k.ctr.x;
    EXPECT_EQ(got.w, k.expected.w) << std::hex << "ctr.x " << k.ctr.x;
  }
}

// cuRAND's curand_init(seed, subsequence, offset): key = (lo(seed), hi(seed)), counter =
// (lo(offset/4), hi(offset/4), lo(subsequence), hi(subsequence)), first output lane offset % 4.
TEST(Philox, CurandStreamConvention) {
  const uint64_t seeds[] = {0, 42, 0x123456789abcdef0ull};
  const uint64_t subs[] = {0, 1, 0xfedcba9876543210ull};
  const uint64_t ns[] = {0, 1, 2, 3, 4, 5, 1023, 0x400000001ull, 0xffffffffffffffffull};
  for (uint64_t seed : seeds) {
    for (uint64_t sub : subs) {
      for (uint64_t n : ns) {
        const uint64_t block = n / 4;
        const Philox4 ctr{
            static_cast<uint32_t>(block & 0xffffffffu), static_cast<uint32_t>(block >> 32),
            static_cast<uint32_t>(sub & 0xffffffffu), static_cast<uint32_t>(sub >> 32)};
        const Philox4 b = philox4x32_10(ctr, static_cast<uint32_t>(seed & 0xffffffffu),
                                        static_cast<uint32_t>(seed >> 32));
        const uint32_t lanes[4] = {b.x, b.y, b.z, b.w};
        EXPECT_EQ(philox_raw(seed, sub, n), lanes[n % 4])
            << "seed " << seed << " sub " << sub << " n " << n;
      }
    }
  }
  // Different subsequences and seeds give different streams.
  EXPECT_NE(philox_raw(1, 0, 0), philox_raw(1, 1, 0));
  EXPECT_NE(philox_raw(1, 0, 0), philox_raw(2, 0, 0));
}

TEST(Philox, UniformInHalfOpenUnitInterval) {
  // cuRAND's mapping x * 2^-32 + 2^-33: the extremes of the raw integers.
  EXPECT_GT(philox_to_uniform(0u), 0.0f);
  EXPECT_EQ(philox_to_uniform(0u), std::ldexp(1.0f, -33));
  EXPECT_EQ(philox_to_uniform(0xffffffffu), 1.0f);
  const int64_t n = 1000000;
  double sum = 0.0, mn = 2.0, mx = -1.0;
  for (int64_t i = 0; i < n; ++i) {
    const double u = philox_uniform(7, 3, static_cast<uint64_t>(i));
    sum += u;
    mn = std::min(mn, u);
    mx = std::max(mx, u);
  }
  EXPECT_GT(mn, 0.0);
  EXPECT_LE(mx, 1.0);
  EXPECT_NEAR(sum / n, 0.5, 5 * std::sqrt(1.0 / 12 / n));  // 5 standard errors
}

TEST(Philox, NormalStatistics) {
  const int64_t n = 1000000;
  double s1 = 0.0, s2 = 0.0, s4 = 0.0;
  int64_t within1 = 0;
  for (int64_t k = 0; k < n; ++k) {
    const double z = philox_normal(2024, 0, static_cast<uint64_t>(k));
    ASSERT_TRUE(std::isfinite(z)) << k;
    s1 += z;
    s2 += z * z;
    s4 += z * z * z * z;
    within1 += std::fabs(z) < 1.0;
  }
  const double mean = s1 / n, var = s2 / n - mean * mean;
  // Standard errors over 1e6 samples: mean 1e-3, variance sqrt(2/n) = 1.4e-3, kurtosis ~5e-3.
  EXPECT_NEAR(mean, 0.0, 5e-3);
  EXPECT_NEAR(var, 1.0, 7e-3);
  EXPECT_NEAR(s4 / n, 3.0, 0.05);
  EXPECT_NEAR(static_cast<double>(within1) / n, 0.682689, 3e-3);
  // The sin and cos of one Box-Muller pair share the radius.
  for (uint64_t k : {0ull, 4ull, 1000ull}) {
    const double a = philox_normal(5, 0, k), b = philox_normal(5, 0, k + 1);
    const uint32_t x = philox_raw(5, 0, k);
    const double u = x * 0x1p-32 + 0x1p-33;
    EXPECT_NEAR(a * a + b * b, -2.0 * std::log(u), 1e-5 * (1 - 2 * std::log(u)));
  }
}

// ---- fills ----------------------------------------------------------------------------------

TEST(RandomFill, MatchesPerElementStreamAndOffsets) {
  const PhiloxStream base{0xabcdefull, 3, 0};
  for (int64_t n : {1, 5, 7, 1000, 100003}) {
    for (uint64_t offset : {0ull, 1ull, 3ull, 8ull, 12345ull}) {
      PhiloxStream st = base;
      st.offset = offset;
      std::vector<float> u(n), z(n);
      cpu::fill_uniform(u.data(), n, -2.0f, 3.0f, st);
      cpu::fill_normal(z.data(), n, 0.5f, 2.0f, st);
      std::vector<double> ru(n), rz(n);
      for (int64_t i = 0; i < n; ++i) {
        ru[i] = -2.0 + 5.0 * philox_uniform(st.seed, st.subsequence, offset + i);
        rz[i] = 0.5 + 2.0 * philox_normal(st.seed, st.subsequence, offset + i);
      }
      const std::string what = "n=" + std::to_string(n) + " offset=" + std::to_string(offset);
      EXPECT_TRUE(all_close(u, ru, {1e-6, 1e-6}, "fill_uniform " + what));
      EXPECT_TRUE(all_close(z, rz, {1e-6, 1e-6}, "fill_normal " + what));
      // The standard fills are the stream itself, bit for bit (the block-at-a-time path computes
      // exactly what philox_normal computes).
      std::vector<float> u01(n), z01(n);
      cpu::fill_uniform(u01.data(), n, 0.0f, 1.0f, st);
      cpu::fill_normal(z01.data(), n, 0.0f, 1.0f, st);
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_EQ(u01[i], philox_uniform(st.seed, st.subsequence, offset + i))
            << what << " i=" << i;
        ASSERT_EQ(z01[i], philox_normal(st.seed, st.subsequence, offset + i)) << what << " i=" << i;
      }
    }
  }
}

TEST(RandomFill, OffsetSelectsTheTailOfTheStream) {
  const int64_t n = 1000;
  PhiloxStream st{99, 0, 0};
  std::vector<float> u0(n + 8), z0(n + 8), u8(n), z8(n);
  cpu::fill_uniform(u0.data(), n + 8, 0.0f, 1.0f, st);
  cpu::fill_normal(z0.data(), n + 8, 0.0f, 1.0f, st);
  st.offset = 8;
  cpu::fill_uniform(u8.data(), n, 0.0f, 1.0f, st);
  cpu::fill_normal(z8.data(), n, 0.0f, 1.0f, st);
  EXPECT_TRUE(bit_equal(u8.data(), u0.data() + 8, n));
  EXPECT_TRUE(bit_equal(z8.data(), z0.data() + 8, n));
}

// ---- dropout --------------------------------------------------------------------------------

TEST(Dropout, KeepsFractionScalesAndRegeneratesMask) {
  const int64_t n = 1000000;
  const std::vector<float> x = random_vector(n, 201, 0.5f, 1.5f);  // never 0: zero means dropped
  const std::vector<float> gy = random_vector(n, 202, 0.5f, 1.5f);
  for (float p : {0.1f, 0.3f, 0.5f, 0.9f}) {
    const PhiloxStream st{1234, 7, 40};
    std::vector<float> y(n), gx(n);
    cpu::dropout_forward(x.data(), y.data(), n, p, st);
    cpu::dropout_backward(gy.data(), gx.data(), n, p, st);
    const float scale = 1.0f / (1.0f - p);
    int64_t kept = 0;
    for (int64_t i = 0; i < n; ++i) {
      const bool keep = philox_uniform(st.seed, st.subsequence, st.offset + i) > p;
      kept += keep;
      ASSERT_EQ(y[i], keep ? x[i] * scale : 0.0f) << "p=" << p << " i=" << i;
      ASSERT_EQ(gx[i], keep ? gy[i] * scale : 0.0f) << "p=" << p << " i=" << i;
      ASSERT_EQ(y[i] != 0.0f, gx[i] != 0.0f) << "backward mask differs at " << i;
    }
    // Binomial(n, 1 - p): 5 standard deviations.
    EXPECT_NEAR(static_cast<double>(kept) / n, 1.0 - p, 5 * std::sqrt(p * (1 - p) / n))
        << "p=" << p;
    // Inverted dropout keeps the expectation: mean(y) ~ mean(x).
    double sx = 0, sy = 0;
    for (int64_t i = 0; i < n; ++i) sx += x[i], sy += y[i];
    EXPECT_NEAR(sy / sx, 1.0, 0.02) << "p=" << p;
  }
}

TEST(Dropout, EdgeProbabilities) {
  const int64_t n = 100003;
  const std::vector<float> x = random_vector(n, 211);
  const PhiloxStream st{5, 0, 0};
  std::vector<float> y(n), gx(n);
  cpu::dropout_forward(x.data(), y.data(), n, 0.0f, st);  // p = 0: identity
  EXPECT_TRUE(bit_equal(y.data(), x.data(), n));
  cpu::dropout_backward(x.data(), gx.data(), n, 0.0f, st);
  EXPECT_TRUE(bit_equal(gx.data(), x.data(), n));
  cpu::dropout_forward(x.data(), y.data(), n, 1.0f, st);  // p = 1: all zeros, no inf or NaN
  cpu::dropout_backward(x.data(), gx.data(), n, 1.0f, st);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(y[i], 0.0f) << i;
    ASSERT_EQ(gx[i], 0.0f) << i;
  }
  const float one = 1.0f;
  float y1 = -1.0f;
  cpu::dropout_forward(&one, &y1, 1, 0.5f, st);  // n = 1
  EXPECT_TRUE(y1 == 0.0f || y1 == 2.0f);
}

// ---- VAE ------------------------------------------------------------------------------------

const std::vector<int64_t> kVaeSizes = {1, 7, 2560 /* 128 x 20 */, 100003};

TEST(Vae, ReparamForwardBackwardMatchFloat64) {
  for (int64_t n : kVaeSizes) {
    const std::vector<float> mu = random_vector(n, 221, -2.0f, 2.0f);
    const std::vector<float> logvar = random_vector(n, 222, -4.0f, 2.0f);
    const std::vector<float> gz = random_vector(n, 223);
    const PhiloxStream st{77, 2, 1024};
    std::vector<float> z(n), gmu(n), glv(n);
    cpu::reparam_forward(mu.data(), logvar.data(), z.data(), n, st);
    cpu::reparam_backward(logvar.data(), gz.data(), gmu.data(), glv.data(), n, st);
    std::vector<double> rz(n), rgmu(n), rglv(n);
    for (int64_t i = 0; i < n; ++i) {
      const double eps = philox_normal(st.seed, st.subsequence, st.offset + i);  // regenerated
      const double sigma = std::exp(0.5 * logvar[i]);
      rz[i] = mu[i] + sigma * eps;
      rgmu[i] = gz[i];
      rglv[i] = gz[i] * 0.5 * sigma * eps;
    }
    const std::string what = "n=" + std::to_string(n);
    EXPECT_TRUE(all_close(z, rz, {1e-6, 1e-5}, "reparam z " + what));
    EXPECT_TRUE(all_close(gmu, rgmu, {0, 0}, "reparam gmu " + what));
    EXPECT_TRUE(all_close(glv, rglv, {1e-6, 1e-5}, "reparam glogvar " + what));
    // gmu may be skipped.
    std::vector<float> glv2(n);
    cpu::reparam_backward(logvar.data(), gz.data(), nullptr, glv2.data(), n, st);
    EXPECT_TRUE(bit_equal(glv2.data(), glv.data(), n));
  }
}

TEST(Vae, FusedKlMatchesFloat64) {
  for (int64_t n : kVaeSizes) {
    for (float weight : {1.0f, 0.37f / 128.0f}) {
      const std::vector<float> mu = random_vector(n, 231, -2.0f, 2.0f);
      const std::vector<float> logvar = random_vector(n, 232, -4.0f, 2.0f);
      double ref = 0.0;
      std::vector<double> rgmu(n), rglv(n);
      for (int64_t i = 0; i < n; ++i) {
        const double m = mu[i], lv = logvar[i];
        // KL(N(m, e^lv) || N(0, 1)) = 1/2 (m^2 + e^lv - 1 - lv)  (Kingma & Welling 2014, app. B)
        ref += 0.5 * (m * m + std::exp(lv) - 1.0 - lv);
        rgmu[i] = weight * m;
        rglv[i] = weight * 0.5 * (std::exp(lv) - 1.0);
      }
      ref *= weight;
      float loss = NAN;
      std::vector<float> gmu(n), glv(n);
      cpu::kl_normal_fused(mu.data(), logvar.data(), n, weight, &loss, gmu.data(), glv.data());
      const std::string what = "n=" + std::to_string(n) + " weight=" + std::to_string(weight);
      EXPECT_TRUE(all_close(&loss, &ref, 1, {1e-6, 1e-5}, "kl loss " + what));
      EXPECT_TRUE(all_close(gmu, rgmu, {1e-7, 1e-6}, "kl gmu " + what));
      EXPECT_TRUE(all_close(glv, rglv, {1e-7, 1e-6}, "kl glogvar " + what));
      float loss_only = NAN;
      cpu::kl_normal_fused(mu.data(), logvar.data(), n, weight, &loss_only, nullptr, nullptr);
      EXPECT_EQ(loss_only, loss);
    }
  }
}

// ---- optimizers: PyTorch's algorithms by hand, in float64 --------------------------------------

struct AdamHyper {
  double lr, beta1, beta2, eps, weight_decay;
  bool decoupled;
};

// torch.optim.Adam / AdamW (single-tensor path, amsgrad=False, maximize=False), step t = 1, 2, ...:
//   AdamW: p = p * (1 - lr wd);  Adam: g = g + wd p
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
void adam_ref(const AdamHyper& h, int t, std::vector<double>& p, const std::vector<float>& g,
              std::vector<double>& m, std::vector<double>& v) {
  for (size_t i = 0; i < p.size(); ++i) {
    double gi = g[i];
    if (h.decoupled) {
      p[i] *= 1.0 - h.lr * h.weight_decay;
    } else {
      gi += h.weight_decay * p[i];
    }
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * gi;
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * gi * gi;
    const double bc1 = 1 - std::pow(h.beta1, t), bc2 = 1 - std::pow(h.beta2, t);
    p[i] -= h.lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + h.eps);
  }
}

f::AdamCoeffs adam_coeffs(const AdamHyper& h, int t) {
  return kernels::adam_coeffs(h.lr, h.beta1, h.beta2, h.eps, h.weight_decay, h.decoupled, t);
}

TEST(Optim, AdamMatchesPytorchAlgorithm) {
  const AdamHyper cases[] = {
      {1e-3, 0.9, 0.999, 1e-8, 0.0, false},   // Adam
      {5e-2, 0.9, 0.999, 1e-8, 1e-2, false},  // Adam with L2 weight decay
      {5e-2, 0.5, 0.99, 1e-6, 1e-1, true},    // AdamW, decoupled
      {2e-4, 0.5, 0.999, 1e-8, 0.0, true},    // DCGAN's betas, AdamW with wd 0
  };
  for (const AdamHyper& h : cases) {
    for (int64_t n : {1, 7, 100003}) {
      const std::vector<float> p0 = random_vector(n, 241, -1.0f, 1.0f);
      std::vector<float> p = p0, m(n, 0.0f), v(n, 0.0f);
      std::vector<double> rp(p0.begin(), p0.end()), rm(n, 0.0), rv(n, 0.0);
      for (int t = 1; t <= 3; ++t) {
        const std::vector<float> g = random_vector(n, 250 + t, -0.1f, 0.1f);
        cpu::adam_step(adam_coeffs(h, t), p.data(), g.data(), m.data(), v.data(), n);
        adam_ref(h, t, rp, g, rm, rv);  // the double hyperparameters, as PyTorch holds them
        const std::string what = "lr=" + std::to_string(h.lr) +
                                 " wd=" + std::to_string(h.weight_decay) +
                                 (h.decoupled ? " adamw" : " adam") + " n=" + std::to_string(n) +
                                 " step " + std::to_string(t);
        EXPECT_TRUE(all_close(p, rp, {1e-6, 1e-6}, "adam p " + what));
        EXPECT_TRUE(all_close(m, rm, {1e-8, 1e-6}, "adam m " + what));
        EXPECT_TRUE(all_close(v, rv, {1e-12, 1e-6}, "adam v " + what));
      }
    }
  }
}

TEST(Optim, AdamFirstStepHandValue) {
  // Step 1 without weight decay: m_hat = g, v_hat = g^2, so p -= lr g / (|g| + eps).
  const float lr = 0.01f;
  float p = 0.5f, g = -0.2f, m = 0.0f, v = 0.0f;
  cpu::adam_step(adam_coeffs({lr, 0.9, 0.999, 1e-8, 0.0, false}, 1), &p, &g, &m, &v, 1);
  EXPECT_NEAR(p, 0.5 + 0.01 * 0.2 / (0.2 + 1e-8), 1e-7);
  // m = (1 - beta1) g and v = (1 - beta2) g^2 with 1 - beta computed in double, as PyTorch does
  // (float(1 - 0.999) = 0.001f, where 1 - 0.999f would be 0.00099998713f).
  EXPECT_EQ(m, 0.1f * -0.2f);
  EXPECT_EQ(v, (0.001f * -0.2f) * -0.2f);  // addcmul: (value * g) * g
}

struct SgdHyper {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
};

// torch.optim.SGD (single-tensor path, maximize=False):
//   g = g + wd p
//   if momentum: buf = g (first step) or momentum buf + (1 - dampening) g
//                g = g + momentum buf (nesterov) or buf
//   p = p - lr g
void sgd_ref(const SgdHyper& h, bool first, std::vector<double>& p, const std::vector<float>& g,
             std::vector<double>& buf) {
  for (size_t i = 0; i < p.size(); ++i) {
    double gi = double(g[i]) + h.weight_decay * p[i];
    if (h.momentum != 0) {
      buf[i] = first ? gi : h.momentum * buf[i] + (1 - h.dampening) * gi;
      gi = h.nesterov ? gi + h.momentum * buf[i] : buf[i];
    }
    p[i] -= h.lr * gi;
  }
}

TEST(Optim, SgdMatchesPytorchAlgorithm) {
  const SgdHyper cases[] = {
      {0.1, 0.0, 0.0, 0.0, false},    // plain
      {0.1, 0.9, 0.0, 0.0, false},    // momentum
      {0.1, 0.9, 0.1, 0.0, false},    // dampening
      {0.1, 0.9, 0.0, 0.0, true},     // nesterov
      {0.05, 0.8, 0.0, 1e-2, true},   // nesterov + weight decay
      {0.05, 0.0, 0.0, 1e-1, false},  // weight decay alone
  };
  for (const SgdHyper& h : cases) {
    for (int64_t n : {1, 7, 100003}) {
      const std::vector<float> p0 = random_vector(n, 261, -1.0f, 1.0f);
      std::vector<float> p = p0, buf(n, 12345.0f);  // garbage: the first step must overwrite it
      std::vector<double> rp(p0.begin(), p0.end()), rbuf(n, 0.0);
      for (int t = 1; t <= 3; ++t) {
        const std::vector<float> g = random_vector(n, 270 + t, -1.0f, 1.0f);
        f::SgdCoeffs c{};
        c.lr = float(h.lr);
        c.momentum = float(h.momentum);
        c.dampening = float(h.dampening);
        c.weight_decay = float(h.weight_decay);
        c.nesterov = h.nesterov;
        c.first_step = t == 1;
        cpu::sgd_step(c, p.data(), g.data(), h.momentum != 0 ? buf.data() : nullptr, n);
        sgd_ref(h, t == 1, rp, g, rbuf);
        const std::string what =
            "momentum=" + std::to_string(h.momentum) + " dampening=" + std::to_string(h.dampening) +
            " wd=" + std::to_string(h.weight_decay) + (h.nesterov ? " nesterov" : "") +
            " n=" + std::to_string(n) + " step " + std::to_string(t);
        EXPECT_TRUE(all_close(p, rp, {1e-6, 1e-6}, "sgd p " + what));
        if (h.momentum != 0) {
          EXPECT_TRUE(all_close(buf, rbuf, {1e-6, 1e-6}, "sgd buf " + what));
        }
      }
    }
  }
  // Momentum without a buffer is a caller bug, reported rather than silently ignored.
  f::SgdCoeffs c{0.1f, 0.9f, 0.0f, 0.0f, false, true};
  float p = 1.0f, g = 1.0f;
  EXPECT_THROW(cpu::sgd_step(c, &p, &g, nullptr, 1), std::invalid_argument);
}

}  // namespace
}  // namespace ll::kernels
