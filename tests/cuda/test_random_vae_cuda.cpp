// test_random_vae_cuda.cpp: the CUDA random fills, dropout and VAE kernels against their CPU
// references (kernels/cuda/{random,dropout,vae}.cu), and the stream convention they share.
//
// What must agree, and how closely:
// - philox_raw: the GPU's curand() after curand_init(seed, subsequence, offset + i) equals the CPU's
//   ll::philox_raw bit for bit, at offsets 0, 1, 2, 3 (every first lane), 5, 1000003 and a 64-bit
//   one, for several seeds and subsequences (including ones with high 32 bits set).
// - fill_uniform on [0, 1): bit for bit (u = x * 2^-32 + 2^-33 on both; the product is exact).
//   On [-2, 3): atol 2^-20. lo + (hi - lo) u may be one fused multiply-add on the GPU (nvcc's
//   default -fmad=true) where the CPU rounds the product (< 5) first: half an ulp of the product
//   (2^-22) plus half an ulp of each result (|y| < 4: 2^-23 each), with margin.
// - fill_normal: atol 2e-5, rtol 2e-6 (not ulps: a ulp bound is meaningless near 0). cuRAND's
//   curand_normal4 takes sin/cos from __sincosf, whose absolute error is about 2^-21.4 on [-pi, pi]
//   and grows somewhat towards 2 pi (CUDA C++ Programming Guide, intrinsic functions), and v = b *
//   2^-32 2pi + 2^-33 2pi may be one fma on the GPU (1 ulp of v, 4.8e-7 at most). Times the radius
//   sqrt(-2 log u) <= 6.7: |error| < 6.7 * (2^-20 + 4.8e-7) = 1e-5, plus logf/sqrtf rounding
//   (relative, a few ulps). The raw integers behind them are exact (philox_raw above).
// - dropout forward and backward: bit for bit (same uniforms, same mask, x * scale on both).
// - reparam forward: z = mu + sigma eps: atol 2e-5 sigma_max + rtol 1e-6 (eps as above; expf of
//   CUDA within 2 ulp). Backward glogvar = gz 0.5 sigma eps: the same bound; gmu = gz bit for bit.
//   On the GPU alone: the eps of reparam is the eps of fill_normal bit for bit (mu = 0, logvar = 0
//   gives z = eps exactly), and the backward regenerates the forward's eps.
// - kl_normal_fused: loss atol 1e-6 n |weight| + rtol 1e-6. Per term (|mu| < 2, |logvar| < 1) the
//   two sides differ by expf (2.5 ulp of e^lv <= e: 6e-7), the possible fma in 1 + lv - mu^2
//   (half an ulp of mu^2 <= 4: 2.4e-7) and the roundings of intermediates below 8 (5e-7 each),
//   halved: under 1e-6 per term; the float64 sums add nothing visible. With exactly computable
//   terms (mu a multiple of 1/8, logvar = 0) the loss is compared bit for bit, so a term missed or
//   counted twice cannot hide in the tolerance. gmu = weight mu bit for bit; glogvar =
//   weight (exp(lv) - 1) / 2 with atol 5e-7 |weight| (expf within 2 ulp of e^lv <= e).
// - every GPU op run twice on the same inputs gives the same bits.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/common/philox.h"
#include "kernels/dropout.h"
#include "kernels/random.h"
#include "kernels/vae.h"
#include "tests/common/compare.h"
#include "tests/cuda/cuda_harness.h"

namespace ll::kernels {
namespace {

using test::all_close;
using test::Tolerance;
using ll::testing::bit_equal;
using testing::DeviceBuffer;
namespace gpu = ll::kernels::cuda;

constexpr Tolerance kExact{0.0, 0.0};
constexpr Tolerance kNormalTol{2e-5, 2e-6};

std::string stream_str(const PhiloxStream& s) {
  return "seed=" + std::to_string(s.seed) + " sub=" + std::to_string(s.subsequence) +
         " offset=" + std::to_string(s.offset);
}

const uint64_t kOffsets[] = {0, 1, 2, 3, 5, 1000003};

// ---- raw numbers -----------------------------------------------------------------------------------
TEST(PhiloxCuda, RawNumbersMatchCpuBitForBit) {
  LL_REQUIRE_GPU();
  const uint64_t seeds[] = {0, 42, 0x123456789abcdef0ull};
  const uint64_t subs[] = {0, 1, 0xfedcba9876543210ull};
  std::vector<uint64_t> offsets(std::begin(kOffsets), std::end(kOffsets));
  offsets.push_back(0x4000000001ull);  // block index above 2^32: the counter's second word
  const int64_t n = 1031;
  DeviceBuffer<uint32_t> d(n);
  for (uint64_t seed : seeds) {
    for (uint64_t sub : subs) {
      for (uint64_t offset : offsets) {
        const PhiloxStream st{seed, sub, offset};
        std::vector<uint32_t> ref(n);
        cpu::philox_raw(ref.data(), n, st);
        gpu::philox_raw(d.get(), n, st, testing::stream());
        const std::vector<uint32_t> got = d.download();
        int64_t bad = 0, first = -1;
        for (int64_t i = 0; i < n; ++i) {
          if (got[i] != ref[i]) {
            if (first < 0) first = i;
            ++bad;
          }
        }
        EXPECT_EQ(bad, 0) << stream_str(st) << ": first mismatch at " << first << " (gpu " << got[first]
                          << ", cpu " << ref[first] << ")";
      }
    }
  }
  // A long run: the grid-stride loop covers it.
  const int64_t big = int64_t{1} << 20;
  const PhiloxStream st{7, 3, 12};
  std::vector<uint32_t> ref(big);
  cpu::philox_raw(ref.data(), big, st);
  DeviceBuffer<uint32_t> db(big);
  gpu::philox_raw(db.get(), big, st, testing::stream());
  EXPECT_TRUE(db.download() == ref) << stream_str(st) << " n=" << big;
}

// ---- fills --------------------------------------------------------------------------------------------
using FillParam = std::tuple<int64_t, uint64_t, int>;  // n, offset, pointer offset in floats

class RandomFillCuda : public ::testing::TestWithParam<FillParam> {};

TEST_P(RandomFillCuda, MatchesCpu) {
  LL_REQUIRE_GPU();
  const auto [n, offset, off] = GetParam();
  const PhiloxStream st{0xabcdefull, 3, offset};
  const std::string what = "n=" + std::to_string(n) + " " + stream_str(st) + " ptr+" + std::to_string(off);
  DeviceBuffer<float> d(static_cast<size_t>(n + off));
  float* y = d.get() + off;
  auto run = [&](auto&& fill) {
    d.poison();
    fill();
    const std::vector<float> all = d.download();
    return std::vector<float>(all.begin() + off, all.end());
  };
  auto cpu_fill = [&](auto&& fill) {
    std::vector<float> v(static_cast<size_t>(n));
    fill(v.data());
    return v;
  };
  // Standard uniforms: bit for bit.
  const auto u_ref = cpu_fill([&](float* p) { cpu::fill_uniform(p, n, 0.0f, 1.0f, st); });
  const auto u = run([&] { gpu::fill_uniform(y, n, 0.0f, 1.0f, st, testing::stream()); });
  EXPECT_TRUE(all_close(u.data(), u_ref.data(), n, kExact, "fill_uniform(0, 1) " + what));
  EXPECT_TRUE(bit_equal(u, run([&] { gpu::fill_uniform(y, n, 0.0f, 1.0f, st, testing::stream()); })))
      << "fill_uniform run twice " << what;
  // Affine uniforms on [-2, 3): one rounding of a value below 5 apart.
  const auto ua_ref = cpu_fill([&](float* p) { cpu::fill_uniform(p, n, -2.0f, 3.0f, st); });
  const auto ua = run([&] { gpu::fill_uniform(y, n, -2.0f, 3.0f, st, testing::stream()); });
  EXPECT_TRUE(all_close(ua.data(), ua_ref.data(), n, {0x1p-20, 0.0}, "fill_uniform(-2, 3) " + what));
  // Standard normals: within the __sincosf bound.
  const auto z_ref = cpu_fill([&](float* p) { cpu::fill_normal(p, n, 0.0f, 1.0f, st); });
  const auto z = run([&] { gpu::fill_normal(y, n, 0.0f, 1.0f, st, testing::stream()); });
  EXPECT_TRUE(all_close(z.data(), z_ref.data(), n, kNormalTol, "fill_normal(0, 1) " + what));
  EXPECT_TRUE(bit_equal(z, run([&] { gpu::fill_normal(y, n, 0.0f, 1.0f, st, testing::stream()); })))
      << "fill_normal run twice " << what;
  // mean + std z: the same bound scaled by std.
  const auto za_ref = cpu_fill([&](float* p) { cpu::fill_normal(p, n, 0.5f, 2.0f, st); });
  const auto za = run([&] { gpu::fill_normal(y, n, 0.5f, 2.0f, st, testing::stream()); });
  EXPECT_TRUE(all_close(za.data(), za_ref.data(), n, {2.0 * kNormalTol.atol + 1e-6, kNormalTol.rtol},
                        "fill_normal(0.5, 2) " + what));
}

INSTANTIATE_TEST_SUITE_P(Cuda, RandomFillCuda,
                         ::testing::Combine(::testing::Values<int64_t>(1, 3, 7, 1023, 4097, int64_t{1} << 20),
                                            ::testing::ValuesIn(kOffsets), ::testing::Values(0, 1)));

// An op at offset 8 sees elements 8.. of the op at offset 0, on the GPU too (block-aligned layout).
TEST(RandomFillCuda, OffsetSelectsTheTailOfTheStream) {
  LL_REQUIRE_GPU();
  const int64_t n = 1000;
  DeviceBuffer<float> a(n + 8), b(n);
  PhiloxStream st{99, 0, 0};
  gpu::fill_normal(a.get(), n + 8, 0.0f, 1.0f, st, testing::stream());
  st.offset = 8;
  gpu::fill_normal(b.get(), n, 0.0f, 1.0f, st, testing::stream());
  const std::vector<float> va = a.download(), vb = b.download();
  EXPECT_TRUE(bit_equal(std::vector<float>(va.begin() + 8, va.end()), vb));
}

// ---- dropout ------------------------------------------------------------------------------------------
using DropoutParam = std::tuple<float, int64_t, uint64_t, int>;  // p, n, offset, pointer offset

class DropoutCuda : public ::testing::TestWithParam<DropoutParam> {};

TEST_P(DropoutCuda, MasksAndValuesMatchCpuBitForBit) {
  LL_REQUIRE_GPU();
  const auto [p, n, offset, off] = GetParam();
  const PhiloxStream st{1234, 7, offset};
  const std::string what = "p=" + std::to_string(p) + " n=" + std::to_string(n) + " " + stream_str(st) +
                           " ptr+" + std::to_string(off);
  const std::vector<float> x = test::random_vector(n, 201, 0.5f, 1.5f);  // never 0: 0 means dropped
  const std::vector<float> gy = test::random_vector(n, 202, 0.5f, 1.5f);
  std::vector<float> y_ref(static_cast<size_t>(n)), gx_ref(static_cast<size_t>(n));
  cpu::dropout_forward(x.data(), y_ref.data(), n, p, st);
  cpu::dropout_backward(gy.data(), gx_ref.data(), n, p, st);

  std::vector<float> xh(static_cast<size_t>(off), 0.0f), gyh(static_cast<size_t>(off), 0.0f);
  xh.insert(xh.end(), x.begin(), x.end());
  gyh.insert(gyh.end(), gy.begin(), gy.end());
  DeviceBuffer<float> dx(xh), dgy(gyh), dy(xh.size()), dgx(xh.size());
  dy.poison();
  dgx.poison();
  gpu::dropout_forward(dx.get() + off, dy.get() + off, n, p, st, testing::stream());
  gpu::dropout_backward(dgy.get() + off, dgx.get() + off, n, p, st, testing::stream());
  const std::vector<float> ya = dy.download(), gxa = dgx.download();
  const std::vector<float> y(ya.begin() + off, ya.end()), gx(gxa.begin() + off, gxa.end());
  EXPECT_TRUE(all_close(y.data(), y_ref.data(), n, kExact, "dropout_forward " + what));
  EXPECT_TRUE(all_close(gx.data(), gx_ref.data(), n, kExact, "dropout_backward " + what));
  int64_t mask_mismatch = 0;
  for (int64_t i = 0; i < n; ++i) mask_mismatch += (y[i] != 0.0f) != (gx[i] != 0.0f);
  EXPECT_EQ(mask_mismatch, 0) << what << ": the backward mask differs from the forward's";
  // In place (y == x), as the engine may run it.
  DeviceBuffer<float> dxi(xh);
  gpu::dropout_forward(dxi.get() + off, dxi.get() + off, n, p, st, testing::stream());
  const std::vector<float> yi = dxi.download();
  EXPECT_TRUE(bit_equal(std::vector<float>(yi.begin() + off, yi.end()), y)) << "in place " << what;
}

INSTANTIATE_TEST_SUITE_P(Cuda, DropoutCuda,
                         ::testing::Combine(::testing::Values(0.0f, 0.1f, 0.5f, 0.9f, 1.0f),
                                            ::testing::Values<int64_t>(1, 7, 4097, int64_t{1} << 20),
                                            ::testing::Values<uint64_t>(0, 3, 1000003), ::testing::Values(0, 1)));

// ---- reparameterization ----------------------------------------------------------------------------
using ReparamParam = std::tuple<int64_t, uint64_t, int>;  // n, offset, pointer offset

class ReparamCuda : public ::testing::TestWithParam<ReparamParam> {};

TEST_P(ReparamCuda, ForwardAndBackwardMatchCpu) {
  LL_REQUIRE_GPU();
  const auto [n, offset, off] = GetParam();
  const PhiloxStream st{2024, 1, offset};
  const std::string what = "n=" + std::to_string(n) + " " + stream_str(st) + " ptr+" + std::to_string(off);
  const std::vector<float> mu = test::random_vector(n, 301), lv = test::random_vector(n, 302);  // logvar in [-1, 1)
  const std::vector<float> gz = test::random_vector(n, 303);
  const double sigma_max = std::exp(0.5);
  const Tolerance tol{kNormalTol.atol * sigma_max, 1e-6};

  std::vector<float> z_ref(n), gmu_ref(n), glv_ref(n);
  cpu::reparam_forward(mu.data(), lv.data(), z_ref.data(), n, st);
  cpu::reparam_backward(lv.data(), gz.data(), gmu_ref.data(), glv_ref.data(), n, st);

  auto up = [&](const std::vector<float>& v) {
    std::vector<float> h(static_cast<size_t>(off), 0.0f);
    h.insert(h.end(), v.begin(), v.end());
    return h;
  };
  auto down = [&](const DeviceBuffer<float>& d) {
    const std::vector<float> a = d.download();
    return std::vector<float>(a.begin() + off, a.end());
  };
  DeviceBuffer<float> dmu(up(mu)), dlv(up(lv)), dgz(up(gz));
  DeviceBuffer<float> dz(n + off), dgmu(n + off), dglv(n + off);
  dz.poison();
  dgmu.poison();
  dglv.poison();
  gpu::reparam_forward(dmu.get() + off, dlv.get() + off, dz.get() + off, n, st, testing::stream());
  gpu::reparam_backward(dlv.get() + off, dgz.get() + off, dgmu.get() + off, dglv.get() + off, n, st,
                        testing::stream());
  const std::vector<float> z = down(dz), gmu = down(dgmu), glv = down(dglv);
  EXPECT_TRUE(all_close(z.data(), z_ref.data(), n, tol, "reparam_forward " + what));
  EXPECT_TRUE(all_close(gmu.data(), gmu_ref.data(), n, kExact, "reparam_backward gmu " + what));
  EXPECT_TRUE(all_close(glv.data(), glv_ref.data(), n, {0.5 * tol.atol, tol.rtol}, "reparam_backward glogvar " + what));

  // Run twice: the same bits.
  gpu::reparam_forward(dmu.get() + off, dlv.get() + off, dz.get() + off, n, st, testing::stream());
  EXPECT_TRUE(bit_equal(down(dz), z)) << "reparam_forward run twice " << what;

  // Optional outputs: glogvar only, then gmu only.
  dgmu.poison();
  dglv.poison();
  gpu::reparam_backward(dlv.get() + off, dgz.get() + off, nullptr, dglv.get() + off, n, st, testing::stream());
  EXPECT_TRUE(bit_equal(down(dglv), glv)) << "reparam_backward without gmu " << what;
  gpu::reparam_backward(dlv.get() + off, dgz.get() + off, dgmu.get() + off, nullptr, n, st, testing::stream());
  EXPECT_TRUE(bit_equal(down(dgmu), gmu)) << "reparam_backward without glogvar " << what;

  // The GPU's eps is fill_normal's, and the backward regenerates it: with mu = 0, logvar = 0,
  // z = 0 + 1 * eps and glogvar = 1 * 0.5 * 1 * eps, both exact.
  const std::vector<float> zeros(static_cast<size_t>(n), 0.0f), ones(static_cast<size_t>(n), 1.0f);
  DeviceBuffer<float> d0(up(zeros)), d1(up(ones)), deps(n + off);
  gpu::fill_normal(deps.get() + off, n, 0.0f, 1.0f, st, testing::stream());
  gpu::reparam_forward(d0.get() + off, d0.get() + off, dz.get() + off, n, st, testing::stream());
  gpu::reparam_backward(d0.get() + off, d1.get() + off, nullptr, dglv.get() + off, n, st, testing::stream());
  const std::vector<float> eps = down(deps), z0 = down(dz), g0 = down(dglv);
  // (Compared as values: 0 + 1 * (-0) is +0.)
  EXPECT_TRUE(all_close(z0.data(), eps.data(), n, kExact, "reparam's eps vs fill_normal " + what));
  std::vector<float> half_eps(eps);
  for (float& e : half_eps) e *= 0.5f;
  EXPECT_TRUE(all_close(g0.data(), half_eps.data(), n, kExact, "the backward's eps vs the forward's " + what));
}

INSTANTIATE_TEST_SUITE_P(Cuda, ReparamCuda,
                         ::testing::Combine(::testing::Values<int64_t>(1, 7, 128 * 20, 4097, int64_t{1} << 20),
                                            ::testing::Values<uint64_t>(0, 1, 6, 1000003), ::testing::Values(0, 1)));

// ---- fused KL --------------------------------------------------------------------------------------
using KlParam = std::tuple<int64_t, float, int>;  // n, weight, pointer offset

class KlFusedCuda : public ::testing::TestWithParam<KlParam> {};

TEST_P(KlFusedCuda, LossAndGradientsMatchCpu) {
  LL_REQUIRE_GPU();
  const auto [n, weight, off] = GetParam();
  const std::string what = "n=" + std::to_string(n) + " weight=" + std::to_string(weight) + " ptr+" + std::to_string(off);
  const std::vector<float> mu = test::random_vector(n, 401, -2.0f, 2.0f), lv = test::random_vector(n, 402);
  float loss_ref = 0.0f;
  std::vector<float> gmu_ref(static_cast<size_t>(n)), glv_ref(static_cast<size_t>(n));
  cpu::kl_normal_fused(mu.data(), lv.data(), n, weight, &loss_ref, gmu_ref.data(), glv_ref.data());

  auto up = [&](const std::vector<float>& v) {
    std::vector<float> h(static_cast<size_t>(off), 0.0f);
    h.insert(h.end(), v.begin(), v.end());
    return h;
  };
  auto down = [&](const DeviceBuffer<float>& d) {
    const std::vector<float> a = d.download();
    return std::vector<float>(a.begin() + off, a.end());
  };
  DeviceBuffer<float> dmu(up(mu)), dlv(up(lv)), dgmu(n + off), dglv(n + off), dloss(2);
  dgmu.poison();
  dglv.poison();
  dloss.poison();
  gpu::kl_normal_fused(dmu.get() + off, dlv.get() + off, n, weight, dloss.get(), dgmu.get() + off, dglv.get() + off,
                       testing::stream());
  const float loss = dloss.download()[0];
  const std::vector<float> gmu = down(dgmu), glv = down(dglv);
  EXPECT_TRUE(all_close(&loss, &loss_ref, 1, {1e-6 * static_cast<double>(n) * std::fabs(weight), 1e-6},
                        "kl loss " + what));
  EXPECT_TRUE(all_close(gmu.data(), gmu_ref.data(), n, kExact, "kl gmu " + what));
  EXPECT_TRUE(all_close(glv.data(), glv_ref.data(), n, {5e-7 * std::fabs(weight), 1e-6}, "kl glogvar " + what));

  // Run twice, and without gradients: the same loss bits.
  gpu::kl_normal_fused(dmu.get() + off, dlv.get() + off, n, weight, dloss.get() + 1, dgmu.get() + off,
                       dglv.get() + off, testing::stream());
  std::vector<float> l2 = dloss.download();
  EXPECT_EQ(std::memcmp(&l2[0], &l2[1], sizeof(float)), 0) << "kl run twice " << what;
  EXPECT_TRUE(bit_equal(down(dgmu), gmu)) << what;
  EXPECT_TRUE(bit_equal(down(dglv), glv)) << what;
  dloss.poison();
  gpu::kl_normal_fused(dmu.get() + off, dlv.get() + off, n, weight, dloss.get(), nullptr, nullptr, testing::stream());
  l2 = dloss.download();
  EXPECT_EQ(std::memcmp(&l2[0], &loss, sizeof(float)), 0) << "kl without gradients " << what;
}

INSTANTIATE_TEST_SUITE_P(Cuda, KlFusedCuda,
                         ::testing::Combine(::testing::Values<int64_t>(1, 7, 128 * 20, 128 * 128, 4097, int64_t{1} << 20),
                                            ::testing::Values(1.0f, 1.0f / 128.0f, 4.0f), ::testing::Values(0, 1)));

// Inputs whose terms and sums are exact on both sides (mu a multiple of 1/8, logvar = 0: exp(0) = 1,
// kl = mu^2 / 2 exactly, weight a power of two): the loss must agree bit for bit at every size, so a
// term counted twice or missed cannot hide in the relative tolerance above.
TEST(KlFusedCuda, ExactlySummableInputsMatchBitForBit) {
  LL_REQUIRE_GPU();
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{128 * 20}, int64_t{4097}, int64_t{3 * 4096 + 5}, int64_t{1} << 20}) {
    std::vector<float> mu(static_cast<size_t>(n)), lv(static_cast<size_t>(n), 0.0f);
    for (int64_t i = 0; i < n; ++i) mu[static_cast<size_t>(i)] = static_cast<float>((i * 7919) % 33 - 16) / 8.0f;
    float ref = 0.0f;
    std::vector<float> gmu_ref(static_cast<size_t>(n)), glv_ref(static_cast<size_t>(n));
    cpu::kl_normal_fused(mu.data(), lv.data(), n, 0.25f, &ref, gmu_ref.data(), glv_ref.data());
    DeviceBuffer<float> dmu(mu), dlv(lv), dgmu(static_cast<size_t>(n)), dglv(static_cast<size_t>(n)), dloss(1);
    dgmu.poison();
    dglv.poison();
    gpu::kl_normal_fused(dmu.get(), dlv.get(), n, 0.25f, dloss.get(), dgmu.get(), dglv.get(), testing::stream());
    EXPECT_EQ(dloss.download()[0], ref) << "n=" << n;
    EXPECT_TRUE(all_close(dgmu.download(), std::vector<double>(gmu_ref.begin(), gmu_ref.end()), kExact, "gmu"));
    EXPECT_TRUE(all_close(dglv.download(), std::vector<double>(glv_ref.begin(), glv_ref.end()), kExact, "glogvar"));
  }
}

TEST(KlFusedCuda, EmptyInputGivesZeroLoss) {
  LL_REQUIRE_GPU();
  DeviceBuffer<float> dloss(1);
  dloss.poison();
  gpu::kl_normal_fused(nullptr, nullptr, 0, 1.0f, dloss.get(), nullptr, nullptr, testing::stream());
  EXPECT_EQ(dloss.download()[0], 0.0f);
}

}  // namespace
}  // namespace ll::kernels
