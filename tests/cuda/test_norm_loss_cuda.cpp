// test_norm_loss_cuda.cpp: the CUDA BatchNorm (kernels/cuda/batchnorm.cu), InstanceNorm
// (kernels/cuda/instancenorm.cu, same tolerances as BatchNorm's) and losses
// (kernels/cuda/loss.cu) against their CPU references on the same random inputs.
//
// Every output buffer is poisoned (NaN bytes) before the CUDA call, so a value the kernel forgot to
// write fails the comparison. Each case also runs twice and must give the same bits (the
// reductions are fixed trees, no atomics).
//
// Tolerances (|gpu - cpu| <= atol + rtol |cpu|):
// - Channel statistics and reduced sums (save_mean, save_invstd, running buffers, ggamma, gbeta,
//   losses from MSE): both backends accumulate in double and round once to float, in different
//   orders (Welford + Chan merges on the GPU, two-pass chunked sums on the CPU), so they agree to
//   ~1e-15 before rounding: equal or one float ulp apart. rtol 1e-6, with atol 1e-6 for sums that
//   may cancel to near zero.
// - Element-wise BatchNorm outputs (y, gx): the same ll::f formulas, but nvcc contracts a * b + c
//   into one FMA by default (-fmad=true) where the CPU rounds twice, and a statistic may be one ulp
//   apart: atol 1e-5, rtol 1e-5 (values are O(1)).
// - BCE: the per-element terms use the same exp/log1p polynomials (contracted differently) and the
//   backward uses the device's expf (max 2 ulp, CUDA Programming Guide, Mathematical Functions):
//   loss rtol 1e-5 (atol 1e-6); gradients atol 1e-6 * |scale| (the gradient is sigmoid - t, in
//   [-1, 1], off by at most ~3 ulp of 1 before the scale).
// - MSE backward: 2 (x - t) k has no add to contract: bitwise equal.
// - Softmax cross-entropy: device expf/log: loss rtol 1e-5 with atol 1e-6 (log s is off by the
//   relative error of s, ~3e-7, which matters for a single row with a small loss), gradients atol
//   1e-6 * |scale|.
// - Eval-mode gx = gy * (gamma * invstd): products only, the same double invstd: bitwise equal.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "kernels/batchnorm.h"
#include "kernels/instancenorm.h"
#include "kernels/loss.h"
#include "tests/common/compare.h"
#include "tests/cuda/cuda_harness.h"

namespace ll::kernels {
namespace {

using ll::testing::DeviceBuffer;
using ll::testing::random_vector;
using test::all_close;
using test::Tolerance;
using ll::testing::bit_equal;
using ll::testing::close;

// A device buffer holding `host`, or nothing (nullptr) when `present` is false.
struct Optional {
  Optional(const std::vector<float>& host, bool present)
      : buf(present ? std::make_unique<DeviceBuffer<float>>(host) : nullptr) {}
  float* get() const { return buf != nullptr ? buf->get() : nullptr; }
  std::unique_ptr<DeviceBuffer<float>> buf;
};

// ---- BatchNorm ------------------------------------------------------------------------------

struct BnCase {
  BatchNormShape s;
  bool affine;   // gamma / beta given (else nullptr)
  bool running;  // running buffers given in training (else nullptr)
};

std::string bn_case_name(const ::testing::TestParamInfo<BnCase>& info) {
  const BnCase& c = info.param;
  return std::string("N") + std::to_string(c.s.N) + "_C" + std::to_string(c.s.C) + "_inner" +
         std::to_string(c.s.inner) + (c.affine ? "_affine" : "_plain") +
         (c.running ? "_running" : "_norunning");
}

// BatchNorm1d (128, 512) and tiny ones; the DCGAN-64 generator's last BatchNorm2d (128, 64, 32x32,
// the "planes" layout with 16 parts per channel); an odd plane size (4097: no float4); inner = 9
// (the "columns" layout with inner > 1); one channel; and M = 1 (N = 1, inner = 1), where the
// running variance takes the biased value 0.
const BatchNormShape kBnShapes[] = {{128, 512, 1}, {7, 3, 1}, {128, 64, 1024}, {2, 5, 4097},
                                    {1, 3, 9},     {3, 1, 1}, {1, 4, 1},       {4, 6, 33}};

std::vector<BnCase> bn_cases() {
  std::vector<BnCase> v;
  for (const BatchNormShape& s : kBnShapes) {
    for (bool affine : {true, false}) {
      for (bool running : {true, false}) v.push_back({s, affine, running});
    }
  }
  return v;
}

class BnCuda : public ::testing::TestWithParam<BnCase> {
 protected:
  int64_t total() const { return GetParam().s.N * GetParam().s.C * GetParam().s.inner; }
};

TEST_P(BnCuda, TrainForwardMatchesCpu) {
  LL_REQUIRE_GPU();
  const BnCase& bc = GetParam();
  const BatchNormShape& s = bc.s;
  const int64_t n = total();
  const float eps = 1e-5f, momentum = 0.1f;
  // A nonzero mean (3) exercises the variance's precision.
  const std::vector<float> x = random_vector(n, 11, 1.0f, 5.0f);
  const std::vector<float> gamma = random_vector(s.C, 12, 0.5f, 1.5f);
  const std::vector<float> beta = random_vector(s.C, 13, -0.5f, 0.5f);
  const std::vector<float> rm0 = random_vector(s.C, 14, -0.1f, 0.1f);
  const std::vector<float> rv0 = random_vector(s.C, 15, 0.5f, 1.5f);

  std::vector<float> y(n), sm(s.C), si(s.C), rm = rm0, rv = rv0;
  cpu::batchnorm_forward_train(s, x.data(), bc.affine ? gamma.data() : nullptr,
                               bc.affine ? beta.data() : nullptr, eps, momentum,
                               bc.running ? rm.data() : nullptr, bc.running ? rv.data() : nullptr,
                               y.data(), sm.data(), si.data());

  DeviceBuffer<float> dx(x), dy(n), dsm(s.C), dsi(s.C);
  Optional dg(gamma, bc.affine), db(beta, bc.affine), drm(rm0, bc.running), drv(rv0, bc.running);
  struct Out {
    std::vector<float> y, sm, si, rm, rv;
  };
  auto run = [&] {
    if (bc.running) {
      drm.buf->upload(rm0);
      drv.buf->upload(rv0);
    }
    dy.poison();
    dsm.poison();
    dsi.poison();
    cuda::batchnorm_forward_train(s, dx.get(), dg.get(), db.get(), eps, momentum, drm.get(),
                                  drv.get(), dy.get(), dsm.get(), dsi.get(), testing::stream());
    Out o{dy.download(), dsm.download(), dsi.download(), {}, {}};
    if (bc.running) {
      o.rm = drm.buf->download();
      o.rv = drv.buf->download();
    }
    return o;
  };
  const Out a = run();
  EXPECT_TRUE(close(a.y, y, {1e-5, 1e-5}, "y"));
  EXPECT_TRUE(close(a.sm, sm, {1e-7, 1e-6}, "save_mean"));
  EXPECT_TRUE(close(a.si, si, {0.0, 1e-6}, "save_invstd"));
  if (bc.running) {
    EXPECT_TRUE(close(a.rm, rm, {1e-7, 1e-6}, "running_mean"));
    EXPECT_TRUE(close(a.rv, rv, {1e-7, 1e-6}, "running_var"));
  }

  const Out b = run();
  EXPECT_TRUE(bit_equal(a.y, b.y) && bit_equal(a.sm, b.sm) && bit_equal(a.si, b.si) &&
              bit_equal(a.rm, b.rm) && bit_equal(a.rv, b.rv))
      << "two runs differ";

  // No save buffers (no_grad): the statistics go to scratch memory; the same y.
  dy.poison();
  cuda::batchnorm_forward_train(s, dx.get(), dg.get(), db.get(), eps, momentum, nullptr, nullptr,
                                dy.get(), nullptr, nullptr, testing::stream());
  EXPECT_TRUE(bit_equal(dy.download(), a.y)) << "y without save/running buffers";
}

TEST_P(BnCuda, EvalForwardMatchesCpu) {
  LL_REQUIRE_GPU();
  const BnCase& bc = GetParam();
  const BatchNormShape& s = bc.s;
  const int64_t n = total();
  const float eps = 1e-3f;
  const std::vector<float> x = random_vector(n, 21, -2.0f, 4.0f);
  const std::vector<float> gamma = random_vector(s.C, 22, 0.5f, 1.5f);
  const std::vector<float> beta = random_vector(s.C, 23, -0.5f, 0.5f);
  const std::vector<float> rm = random_vector(s.C, 24, -1.0f, 1.0f);
  const std::vector<float> rv = random_vector(s.C, 25, 0.2f, 3.0f);
  std::vector<float> y(n);
  cpu::batchnorm_forward_eval(s, x.data(), bc.affine ? gamma.data() : nullptr,
                              bc.affine ? beta.data() : nullptr, rm.data(), rv.data(), eps,
                              y.data());
  DeviceBuffer<float> dx(x), drm(rm), drv(rv), dy(n);
  Optional dg(gamma, bc.affine), db(beta, bc.affine);
  dy.poison();
  cuda::batchnorm_forward_eval(s, dx.get(), dg.get(), db.get(), drm.get(), drv.get(), eps, dy.get(),
                               testing::stream());
  EXPECT_TRUE(close(dy.download(), y, {1e-5, 1e-5}, "eval y"));
}

TEST_P(BnCuda, TrainBackwardMatchesCpu) {
  LL_REQUIRE_GPU();
  const BnCase& bc = GetParam();
  const BatchNormShape& s = bc.s;
  const int64_t n = total();
  const float eps = 1e-5f;
  const std::vector<float> x = random_vector(n, 31, -1.0f, 3.0f);
  // gy with a nonzero mean: the terms gy and mean(gy) then nearly cancel.
  const std::vector<float> gy = random_vector(n, 32, -0.5f, 1.5f);
  const std::vector<float> gamma = random_vector(s.C, 33, 0.5f, 1.5f);
  const float* gamma_p = bc.affine ? gamma.data() : nullptr;
  // The saved statistics from the CPU forward feed both backwards, so only the backward is tested.
  std::vector<float> y(n), sm(s.C), si(s.C);
  cpu::batchnorm_forward_train(s, x.data(), gamma_p, nullptr, eps, 0.1f, nullptr, nullptr, y.data(),
                               sm.data(), si.data());
  std::vector<float> gx(n), gg(s.C), gb(s.C);
  cpu::batchnorm_backward_train(s, x.data(), gy.data(), gamma_p, sm.data(), si.data(), gx.data(),
                                gg.data(), gb.data());

  DeviceBuffer<float> dx(x), dgy(gy), dsm(sm), dsi(si), dgx(n), dgg(s.C), dgb(s.C);
  Optional dgamma(gamma, bc.affine);
  auto run = [&](bool want_gx, bool want_params) {
    dgx.poison();
    dgg.poison();
    dgb.poison();
    cuda::batchnorm_backward_train(s, dx.get(), dgy.get(), dgamma.get(), dsm.get(), dsi.get(),
                                   want_gx ? dgx.get() : nullptr,
                                   want_params ? dgg.get() : nullptr,
                                   want_params ? dgb.get() : nullptr, testing::stream());
  };
  run(true, true);
  const std::vector<float> agx = dgx.download(), agg = dgg.download(), agb = dgb.download();
  EXPECT_TRUE(close(agx, gx, {1e-5, 1e-5}, "gx"));
  EXPECT_TRUE(close(agg, gg, {1e-6, 1e-6}, "ggamma"));
  EXPECT_TRUE(close(agb, gb, {1e-6, 1e-6}, "gbeta"));

  run(true, true);
  EXPECT_TRUE(bit_equal(dgx.download(), agx) && bit_equal(dgg.download(), agg) &&
              bit_equal(dgb.download(), agb))
      << "two runs differ";
  run(false, true);  // only the parameter gradients
  EXPECT_TRUE(bit_equal(dgg.download(), agg) && bit_equal(dgb.download(), agb))
      << "ggamma/gbeta without gx";
  run(true, false);  // only gx
  EXPECT_TRUE(bit_equal(dgx.download(), agx)) << "gx without ggamma/gbeta";
}

TEST_P(BnCuda, EvalBackwardMatchesCpu) {
  LL_REQUIRE_GPU();
  const BnCase& bc = GetParam();
  const BatchNormShape& s = bc.s;
  const int64_t n = total();
  const float eps = 1e-5f;
  const std::vector<float> x = random_vector(n, 41, -2.0f, 2.0f);
  const std::vector<float> gy = random_vector(n, 42, -1.0f, 1.0f);
  const std::vector<float> gamma = random_vector(s.C, 43, 0.5f, 1.5f);
  const std::vector<float> rm = random_vector(s.C, 44, -1.0f, 1.0f);
  const std::vector<float> rv = random_vector(s.C, 45, 0.2f, 3.0f);
  const float* gamma_p = bc.affine ? gamma.data() : nullptr;
  std::vector<float> gx(n), gg(s.C), gb(s.C);
  cpu::batchnorm_backward_eval(s, x.data(), gy.data(), gamma_p, rm.data(), rv.data(), eps,
                               gx.data(), gg.data(), gb.data());
  DeviceBuffer<float> dx(x), dgy(gy), drm(rm), drv(rv), dgx(n), dgg(s.C), dgb(s.C);
  Optional dgamma(gamma, bc.affine);
  auto run = [&] {
    dgx.poison();
    dgg.poison();
    dgb.poison();
    cuda::batchnorm_backward_eval(s, dx.get(), dgy.get(), dgamma.get(), drm.get(), drv.get(), eps,
                                  dgx.get(), dgg.get(), dgb.get(), testing::stream());
  };
  run();
  const std::vector<float> agx = dgx.download(), agg = dgg.download(), agb = dgb.download();
  // gx = gy * (gamma * invstd): the same two float products as the CPU, nothing to contract.
  EXPECT_TRUE(close(agx, gx, {0.0, 0.0}, "eval gx (bitwise)"));
  EXPECT_TRUE(close(agg, gg, {1e-6, 1e-6}, "eval ggamma"));
  EXPECT_TRUE(close(agb, gb, {1e-6, 1e-6}, "eval gbeta"));
  run();
  EXPECT_TRUE(bit_equal(dgx.download(), agx) && bit_equal(dgg.download(), agg) &&
              bit_equal(dgb.download(), agb))
      << "two runs differ";
}

// Synchronized BatchNorm's two pieces (kernels/batchnorm.h): a shard's statistics, and gx from
// the batch's sums. The moments are reductions in double (equal or one ulp apart); gx is
// element-wise (FMA contraction: 1e-5).
TEST_P(BnCuda, MomentsMatchCpu) {
  LL_REQUIRE_GPU();
  const BatchNormShape& s = GetParam().s;
  const int64_t n = total();
  const std::vector<float> x = random_vector(n, 51, 1.0f, 5.0f);
  std::vector<float> mean(s.C), var(s.C);
  cpu::batchnorm_moments(s, x.data(), mean.data(), var.data());
  DeviceBuffer<float> dx(x), dmean(s.C), dvar(s.C);
  auto run = [&] {
    dmean.poison();
    dvar.poison();
    cuda::batchnorm_moments(s, dx.get(), dmean.get(), dvar.get(), testing::stream());
  };
  run();
  const std::vector<float> am = dmean.download(), av = dvar.download();
  EXPECT_TRUE(close(am, mean, {1e-7, 1e-6}, "mean"));
  EXPECT_TRUE(close(av, var, {1e-7, 1e-6}, "var"));
  run();
  EXPECT_TRUE(bit_equal(dmean.download(), am) && bit_equal(dvar.download(), av)) << "two runs differ";
}

TEST_P(BnCuda, BackwardInputMatchesCpu) {
  LL_REQUIRE_GPU();
  const BnCase& bc = GetParam();
  const BatchNormShape& s = bc.s;
  const int64_t n = total();
  const float eps = 1e-5f;
  const std::vector<float> x = random_vector(n, 61, -1.0f, 3.0f);
  const std::vector<float> gy = random_vector(n, 62, -0.5f, 1.5f);
  const std::vector<float> gamma = random_vector(s.C, 63, 0.5f, 1.5f);
  const std::vector<float> mean = random_vector(s.C, 64, 0.5f, 1.5f);
  const std::vector<float> var = random_vector(s.C, 65, 0.5f, 1.5f);
  const std::vector<float> mean_gy = random_vector(s.C, 66, -0.5f, 0.5f);
  const std::vector<float> mean_gy_xhat = random_vector(s.C, 67, -0.5f, 0.5f);
  const float* gamma_p = bc.affine ? gamma.data() : nullptr;
  std::vector<float> gx(n);
  cpu::batchnorm_backward_input(s, x.data(), gy.data(), gamma_p, mean.data(), var.data(), eps,
                                mean_gy.data(), mean_gy_xhat.data(), gx.data());
  DeviceBuffer<float> dx(x), dgy(gy), dmean(mean), dvar(var), dmg(mean_gy), dmgx(mean_gy_xhat), dgx(n);
  Optional dgamma(gamma, bc.affine);
  dgx.poison();
  cuda::batchnorm_backward_input(s, dx.get(), dgy.get(), dgamma.get(), dmean.get(), dvar.get(), eps,
                                 dmg.get(), dmgx.get(), dgx.get(), testing::stream());
  EXPECT_TRUE(close(dgx.download(), gx, {1e-5, 1e-5}, "gx from the batch's sums"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, BnCuda, ::testing::ValuesIn(bn_cases()), bn_case_name);

// An empty batch in eval mode (the engine's shape then has inner = 0, so no column to reduce):
// the parameter gradients are the empty sums, 0, as on the CPU, and nothing fails to launch.
TEST(BnCudaEmpty, EvalBackwardOfEmptyBatchGivesZeroParameterGradients) {
  LL_REQUIRE_GPU();
  const BatchNormShape s{0, 3, 0};
  const std::vector<float> rm = random_vector(s.C, 91), rv = random_vector(s.C, 92, 0.5f, 1.5f);
  const std::vector<float> gamma = random_vector(s.C, 93, 0.5f, 1.5f);
  DeviceBuffer<float> drm(rm), drv(rv), dgamma(gamma), dgg(s.C), dgb(s.C);
  dgg.poison();
  dgb.poison();
  cuda::batchnorm_backward_eval(s, nullptr, nullptr, dgamma.get(), drm.get(), drv.get(), 1e-5f,
                                nullptr, dgg.get(), dgb.get(), testing::stream());
  const std::vector<float> zeros(static_cast<size_t>(s.C), 0.0f);
  EXPECT_TRUE(close(dgg.download(), zeros, {0.0, 0.0}, "ggamma of an empty batch"));
  EXPECT_TRUE(close(dgb.download(), zeros, {0.0, 0.0}, "gbeta of an empty batch"));
}

// ---- losses ---------------------------------------------------------------------------------

struct LossCase {
  int64_t n;
  Reduction r;
  int64_t offset;  // floats from a 16-byte boundary: 1 takes the scalar (non-float4) paths
};

std::vector<LossCase> loss_cases() {
  std::vector<LossCase> v;
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{4097}, int64_t{100352} /* 128 x 784 */}) {
    for (Reduction r : {Reduction::Sum, Reduction::Mean}) {
      for (int64_t offset : {int64_t{0}, int64_t{1}}) v.push_back({n, r, offset});
    }
  }
  return v;
}

std::string loss_case_name(const ::testing::TestParamInfo<LossCase>& info) {
  const LossCase& c = info.param;
  return std::string("n") + std::to_string(c.n) + (c.r == Reduction::Mean ? "_mean" : "_sum") + "_off" +
         std::to_string(c.offset);
}

double mean_scale(Reduction r, int64_t n) { return r == Reduction::Mean ? 1.0 / double(n) : 1.0; }

// `host` on the device, starting `offset` floats after the allocation's (aligned) start.
struct Shifted {
  Shifted(const std::vector<float>& host, int64_t offset)
      : offset(offset), buf(host.size() + static_cast<size_t>(offset)) {
    std::vector<float> padded(host.size() + static_cast<size_t>(offset), 0.0f);
    std::copy(host.begin(), host.end(), padded.begin() + offset);
    buf.upload(padded);
  }
  Shifted(int64_t n, int64_t offset) : offset(offset), buf(static_cast<size_t>(n + offset)) {}
  float* get() const { return buf.get() + offset; }
  void poison() { buf.poison(); }
  std::vector<float> download() const {
    const std::vector<float> all = buf.download();
    return {all.begin() + offset, all.end()};
  }
  int64_t offset;
  DeviceBuffer<float> buf;
};

float device_loss(const DeviceBuffer<float>& loss) { return loss.download()[0]; }

class LossCuda : public ::testing::TestWithParam<LossCase> {};

TEST_P(LossCuda, BceWithLogitsMatchesCpu) {
  LL_REQUIRE_GPU();
  const LossCase& lc = GetParam();
  const int64_t n = lc.n;
  std::vector<float> x = random_vector(n, 51, -8.0f, 8.0f);
  std::vector<float> t = random_vector(n, 52, 0.0f, 1.0f);
  const float extremes[] = {80.0f, -80.0f, 30.0f, -30.0f, 0.0f, 1e4f, -1e4f};
  for (int64_t i = 0; i < n && i < 7; ++i) x[i] = extremes[i];
  for (int64_t i = 0; i < n && i < 3; ++i) t[i] = i % 2 == 0 ? 0.0f : 1.0f;
  const float gout = 0.7f;
  const double k = gout * mean_scale(lc.r, n);

  float loss = NAN, fused_loss = NAN;
  std::vector<float> gx(n), gf(n);
  cpu::bce_with_logits_forward(x.data(), t.data(), n, lc.r, &loss);
  cpu::bce_with_logits_backward(x.data(), t.data(), n, lc.r, gout, gx.data());
  cpu::bce_with_logits_fused(x.data(), t.data(), n, lc.r, &fused_loss, gf.data());

  Shifted dx(x, lc.offset), dt(t, lc.offset), dgx(n, lc.offset);
  DeviceBuffer<float> dl(1);
  dl.poison();
  cuda::bce_with_logits_forward(dx.get(), dt.get(), n, lc.r, dl.get(), testing::stream());
  const float a = device_loss(dl);
  EXPECT_TRUE(all_close(&a, &loss, 1, {1e-6, 1e-5}, "bce loss"));
  dl.poison();
  cuda::bce_with_logits_forward(dx.get(), dt.get(), n, lc.r, dl.get(), testing::stream());
  EXPECT_EQ(std::memcmp(&a, &dl.download()[0], sizeof(float)), 0) << "two runs differ";

  dgx.poison();
  cuda::bce_with_logits_backward(dx.get(), dt.get(), n, lc.r, gout, dgx.get(), testing::stream());
  EXPECT_TRUE(close(dgx.download(), gx, {1e-6 * k, 1e-5}, "bce grad"));

  dgx.poison();
  dl.poison();
  cuda::bce_with_logits_fused(dx.get(), dt.get(), n, lc.r, dl.get(), dgx.get(), testing::stream());
  const float af = device_loss(dl);
  EXPECT_TRUE(all_close(&af, &fused_loss, 1, {1e-6, 1e-5}, "bce fused loss"));
  EXPECT_TRUE(close(dgx.download(), gf, {1e-6 * k / gout, 1e-5}, "bce fused grad"));

  dl.poison();
  cuda::bce_with_logits_fused(dx.get(), dt.get(), n, lc.r, dl.get(), nullptr, testing::stream());
  EXPECT_EQ(std::memcmp(&a, &dl.download()[0], sizeof(float)), 0)
      << "fused without gx is the forward";
}

TEST_P(LossCuda, MseMatchesCpu) {
  LL_REQUIRE_GPU();
  const LossCase& lc = GetParam();
  const int64_t n = lc.n;
  const std::vector<float> x = random_vector(n, 61, -2.0f, 2.0f);
  const std::vector<float> t = random_vector(n, 62, 0.0f, 1.0f);
  const float gout = 1.3f;
  float loss = NAN;
  std::vector<float> gx(n);
  cpu::mse_forward(x.data(), t.data(), n, lc.r, &loss);
  cpu::mse_backward(x.data(), t.data(), n, lc.r, gout, gx.data());

  Shifted dx(x, lc.offset), dt(t, lc.offset), dgx(n, lc.offset);
  DeviceBuffer<float> dl(1);
  dl.poison();
  cuda::mse_forward(dx.get(), dt.get(), n, lc.r, dl.get(), testing::stream());
  const float a = device_loss(dl);
  EXPECT_TRUE(all_close(&a, &loss, 1, {1e-6, 1e-6}, "mse loss"));
  dl.poison();
  cuda::mse_forward(dx.get(), dt.get(), n, lc.r, dl.get(), testing::stream());
  EXPECT_EQ(std::memcmp(&a, &dl.download()[0], sizeof(float)), 0) << "two runs differ";

  dgx.poison();
  cuda::mse_backward(dx.get(), dt.get(), n, lc.r, gout, dgx.get(), testing::stream());
  EXPECT_TRUE(close(dgx.download(), gx, {0.0, 0.0}, "mse grad (bitwise)"));
}

INSTANTIATE_TEST_SUITE_P(Sizes, LossCuda, ::testing::ValuesIn(loss_cases()), loss_case_name);

struct CeCase {
  int64_t N, C;
  Reduction r;
};

std::vector<CeCase> ce_cases() {
  std::vector<CeCase> v;
  for (int64_t C : {int64_t{2}, int64_t{10}, int64_t{1000}}) {
    for (int64_t N : {int64_t{1}, int64_t{7}, int64_t{128}}) {
      for (Reduction r : {Reduction::Sum, Reduction::Mean}) v.push_back({N, C, r});
    }
  }
  return v;
}

std::string ce_case_name(const ::testing::TestParamInfo<CeCase>& info) {
  const CeCase& c = info.param;
  return std::string("N") + std::to_string(c.N) + "_C" + std::to_string(c.C) +
         (c.r == Reduction::Mean ? "_mean" : "_sum");
}

class SoftmaxCeCuda : public ::testing::TestWithParam<CeCase> {};

TEST_P(SoftmaxCeCuda, MatchesCpu) {
  LL_REQUIRE_GPU();
  const CeCase& cc = GetParam();
  const int64_t N = cc.N, C = cc.C;
  // Logits around 20: the max shift must keep exp from overflowing.
  const std::vector<float> logits = random_vector(N * C, 71, 15.0f, 25.0f);
  std::vector<int32_t> labels(N);
  for (int64_t i = 0; i < N; ++i) labels[i] = static_cast<int32_t>((i * 7919 + 3) % C);
  const float gout = 0.9f;
  float loss = NAN;
  std::vector<float> gx(N * C);
  cpu::softmax_cross_entropy_forward(logits.data(), labels.data(), N, C, cc.r, &loss);
  cpu::softmax_cross_entropy_backward(logits.data(), labels.data(), N, C, cc.r, gout, gx.data());

  DeviceBuffer<float> dlogits(logits), dgx(N * C), dl(1);
  DeviceBuffer<int32_t> dlabels(labels);
  dl.poison();
  cuda::softmax_cross_entropy_forward(dlogits.get(), dlabels.get(), N, C, cc.r, dl.get(),
                                      testing::stream());
  const float a = device_loss(dl);
  EXPECT_TRUE(all_close(&a, &loss, 1, {1e-6, 1e-5}, "softmax CE loss"));
  dl.poison();
  cuda::softmax_cross_entropy_forward(dlogits.get(), dlabels.get(), N, C, cc.r, dl.get(),
                                      testing::stream());
  EXPECT_EQ(std::memcmp(&a, &dl.download()[0], sizeof(float)), 0) << "two runs differ";

  dgx.poison();
  cuda::softmax_cross_entropy_backward(dlogits.get(), dlabels.get(), N, C, cc.r, gout, dgx.get(),
                                       testing::stream());
  EXPECT_TRUE(close(dgx.download(), gx, {1e-6 * gout * mean_scale(cc.r, N), 1e-5}, "softmax CE grad"));
}

INSTANTIATE_TEST_SUITE_P(Shapes, SoftmaxCeCuda, ::testing::ValuesIn(ce_cases()), ce_case_name);

// The device cannot throw on a bad label (the CPU does, and the engine checks on the host): the
// kernels must not read outside the row, and they mark the row NaN.
TEST(SoftmaxCeCudaLabels, OutOfRangeLabelGivesNaNRow) {
  LL_REQUIRE_GPU();
  const int64_t N = 3, C = 5;
  const std::vector<float> logits = random_vector(N * C, 81);
  const std::vector<int32_t> labels = {1, 5, -1};  // rows 1 and 2 are invalid
  DeviceBuffer<float> dlogits(logits), dgx(N * C), dl(1);
  DeviceBuffer<int32_t> dlabels(labels);
  cuda::softmax_cross_entropy_forward(dlogits.get(), dlabels.get(), N, C, Reduction::Sum, dl.get(),
                                      testing::stream());
  EXPECT_TRUE(std::isnan(device_loss(dl)));
  dgx.poison();
  cuda::softmax_cross_entropy_backward(dlogits.get(), dlabels.get(), N, C, Reduction::Sum, 1.0f,
                                       dgx.get(), testing::stream());
  const std::vector<float> g = dgx.download();
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_TRUE(std::isfinite(g[c])) << "row 0 is valid";
    EXPECT_TRUE(std::isnan(g[C + c]) && std::isnan(g[2 * C + c])) << "rows 1, 2 are not";
  }
}

// ---- InstanceNorm ---------------------------------------------------------------------------
// Rows of 2 values, pix2pix-28's 16x16 and 2x2 planes, rows longer than a block (300, 1000: the
// threads loop) and one channel.
struct InCase {
  InstanceNormShape s;
  bool affine;
};

class InCuda : public ::testing::TestWithParam<InCase> {};

TEST_P(InCuda, ForwardAndBackwardMatchCpu) {
  LL_REQUIRE_GPU();
  const InstanceNormShape& s = GetParam().s;
  const bool affine = GetParam().affine;
  const int64_t n = s.N * s.C * s.inner, rows = s.N * s.C;
  const float eps = 1e-5f;
  const std::vector<float> x = random_vector(n, 51, 1.0f, 5.0f);
  const std::vector<float> gy = random_vector(n, 52, -0.5f, 1.5f);
  const std::vector<float> gamma = random_vector(s.C, 53, 0.5f, 1.5f);
  const std::vector<float> beta = random_vector(s.C, 54, -0.5f, 0.5f);
  const float* gp = affine ? gamma.data() : nullptr;
  const float* bp = affine ? beta.data() : nullptr;
  std::vector<float> y(n), sm(rows), si(rows), gx(n), gg(s.C), gb(s.C);
  cpu::instancenorm_forward(s, x.data(), gp, bp, eps, y.data(), sm.data(), si.data());
  cpu::instancenorm_backward(s, x.data(), gy.data(), gp, sm.data(), si.data(), gx.data(), gg.data(), gb.data());

  DeviceBuffer<float> dx(x), dgy(gy), dy(n), dsm(rows), dsi(rows), dgx(n), dgg(s.C), dgb(s.C);
  Optional dgamma(gamma, affine), dbeta(beta, affine);
  dy.poison();
  dsm.poison();
  dsi.poison();
  cuda::instancenorm_forward(s, dx.get(), dgamma.get(), dbeta.get(), eps, dy.get(), dsm.get(), dsi.get(),
                             testing::stream());
  const std::vector<float> ay = dy.download();
  EXPECT_TRUE(close(ay, y, {1e-5, 1e-5}, "y"));
  EXPECT_TRUE(close(dsm.download(), sm, {1e-6, 1e-6}, "save_mean"));
  EXPECT_TRUE(close(dsi.download(), si, {0, 1e-6}, "save_invstd"));
  dy.poison();
  cuda::instancenorm_forward(s, dx.get(), dgamma.get(), dbeta.get(), eps, dy.get(), nullptr, nullptr,
                             testing::stream());
  EXPECT_TRUE(bit_equal(dy.download(), ay)) << "y without save buffers";

  // The backward from the CPU's saved statistics, so that only the backward is compared.
  DeviceBuffer<float> csm(sm), csi(si);
  auto run = [&](bool want_gx, bool want_params) {
    dgx.poison();
    dgg.poison();
    dgb.poison();
    cuda::instancenorm_backward(s, dx.get(), dgy.get(), dgamma.get(), csm.get(), csi.get(),
                                want_gx ? dgx.get() : nullptr, want_params ? dgg.get() : nullptr,
                                want_params ? dgb.get() : nullptr, testing::stream());
  };
  run(true, affine);
  const std::vector<float> agx = dgx.download();
  EXPECT_TRUE(close(agx, gx, {1e-5, 1e-5}, "gx"));
  if (affine) {
    EXPECT_TRUE(close(dgg.download(), gg, {1e-6, 1e-6}, "ggamma"));
    EXPECT_TRUE(close(dgb.download(), gb, {1e-6, 1e-6}, "gbeta"));
  }
  run(true, affine);
  EXPECT_TRUE(bit_equal(dgx.download(), agx)) << "two runs differ";
  if (affine) {
    const std::vector<float> agg = dgg.download();
    run(false, true);  // only the parameter gradients
    EXPECT_TRUE(bit_equal(dgg.download(), agg)) << "ggamma without gx";
  }
}

std::vector<InCase> in_cases() {
  std::vector<InCase> v;
  for (const InstanceNormShape& s : {InstanceNormShape{2, 3, 2}, InstanceNormShape{4, 8, 256}, InstanceNormShape{3, 2, 4},
                                     InstanceNormShape{2, 1, 300}, InstanceNormShape{1, 3, 1000}}) {
    for (bool affine : {true, false}) v.push_back({s, affine});
  }
  return v;
}

INSTANTIATE_TEST_SUITE_P(InstanceNorm, InCuda, ::testing::ValuesIn(in_cases()),
                         [](const ::testing::TestParamInfo<InCase>& info) {
                           const InCase& c = info.param;
                           return std::string("N") + std::to_string(c.s.N) + "_C" + std::to_string(c.s.C) + "_inner" +
                                  std::to_string(c.s.inner) + (c.affine ? "_affine" : "_plain");
                         });

}  // namespace
}  // namespace ll::kernels
