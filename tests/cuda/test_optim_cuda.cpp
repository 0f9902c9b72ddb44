// test_optim_cuda.cpp: the CUDA optimizer steps (kernels/cuda/optim.cu) against the CPU reference
// on the same inputs, and the multi-tensor Adam against one adam_step per tensor.
//
// Exactness. Both backends evaluate the same ll::f::adam_update / sgd_update, and IEEE sqrtf and
// division are the CUDA defaults (-prec-sqrt=true, -prec-div=true), so optim.cu compiled with
// -fmad=false gives the CPU's bits exactly (the CPU is built with -ffp-contract=off). nvcc's default
// (-fmad=true) contracts m + (1 - beta1)(g - m), v beta2 + (1 - beta2) g^2, p - step * (m / denom)
// and the SGD updates into FMAs, each rounding once instead of twice, so the results can differ by
// an ulp per contracted operation. The tolerances below hold in both cases; they were checked on the
// host by evaluating the contracted formulas with std::fma over millions of inputs drawn as here
// (largest error about half the tolerance):
// - Adam m: atol 1 ulp(1), rtol 2 ulp (the moments are O(0.2), |err| <= 1 ulp of the larger term);
// - Adam v: rtol 4 ulp, atol 4e-12 (v is (1 - beta2) g^2 at step 1, and with L2 weight decay the
//   contracted g + wd p is exact where the CPU's rounds, which matters when the two cancel);
// - Adam p: one rounding of p plus a few ulps of the O(1e-2) update: rtol 2 ulp, atol 2e-8;
// - SGD buf: atol and rtol 2 ulp; SGD p: rtol 2 ulp, atol 1e-7 (Nesterov's g + momentum buf is
//   O(3) and its ulp, times lr, reaches 3e-8).
// (ulp here is 2^-23, the spacing of floats in [1, 2).) Each case also records how many elements
// are not bitwise equal (test property "not_bitwise"): 0 with -fmad=false.
// adam_step_multi against adam_step: the same kernel code, so bitwise equality is required.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/optim.h"
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

constexpr double kUlp = 1.0 / (1 << 23);

int64_t not_bitwise(const std::vector<float>& a, const std::vector<float>& b) {
  int64_t count = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    count += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  }
  return count;
}

// Device copy of `host` starting `offset` floats after a 16-byte boundary (offset 1: the scalar
// paths of the float4 kernels).
struct Shifted {
  Shifted(const std::vector<float>& host, int64_t offset)
      : offset(offset), buf(host.size() + static_cast<size_t>(offset)) {
    std::vector<float> padded(host.size() + static_cast<size_t>(offset), 0.0f);
    std::copy(host.begin(), host.end(), padded.begin() + offset);
    buf.upload(padded);
  }
  float* get() const { return buf.get() + offset; }
  std::vector<float> download() const {
    const std::vector<float> all = buf.download();
    return {all.begin() + offset, all.end()};
  }
  int64_t offset;
  DeviceBuffer<float> buf;
};

// ---- Adam / AdamW -----------------------------------------------------------------------------

struct AdamCase {
  bool decoupled;  // AdamW
  int64_t t;       // step
  double weight_decay;
  int64_t n;
  int64_t offset;
};

std::vector<AdamCase> adam_cases() {
  std::vector<AdamCase> v;
  for (bool decoupled : {false, true}) {
    for (int64_t t : {int64_t{1}, int64_t{1000}}) {
      for (double wd : {0.0, 0.01}) {
        for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1023}, int64_t{4097}, int64_t{100003}}) {
          for (int64_t offset : {int64_t{0}, int64_t{1}}) v.push_back({decoupled, t, wd, n, offset});
        }
      }
    }
  }
  return v;
}

std::string adam_case_name(const ::testing::TestParamInfo<AdamCase>& info) {
  const AdamCase& c = info.param;
  return std::string(c.decoupled ? "AdamW" : "Adam") + "_t" + std::to_string(c.t) +
         (c.weight_decay != 0.0 ? "_wd" : "_nowd") + "_n" + std::to_string(c.n) + "_off" +
         std::to_string(c.offset);
}

class AdamCuda : public ::testing::TestWithParam<AdamCase> {};

TEST_P(AdamCuda, MatchesCpu) {
  LL_REQUIRE_GPU();
  const AdamCase& ac = GetParam();
  const int64_t n = ac.n;
  const f::AdamCoeffs c = adam_coeffs(1e-3, 0.9, 0.999, 1e-8, ac.weight_decay, ac.decoupled, ac.t);
  const std::vector<float> p0 = random_vector(n, 1, -1.0f, 1.0f);
  const std::vector<float> g = random_vector(n, 2, -1.0f, 1.0f);
  // The first step starts from zero moments, as PyTorch's; later steps from typical ones.
  const std::vector<float> m0 = ac.t == 1 ? std::vector<float>(n, 0.0f) : random_vector(n, 3, -0.1f, 0.1f);
  const std::vector<float> v0 = ac.t == 1 ? std::vector<float>(n, 0.0f) : random_vector(n, 4, 1e-4f, 1e-2f);
  std::vector<float> p = p0, m = m0, v = v0;
  cpu::adam_step(c, p.data(), g.data(), m.data(), v.data(), n);

  Shifted dp(p0, ac.offset), dg(g, ac.offset), dm(m0, ac.offset), dv(v0, ac.offset);
  cuda::adam_step(c, dp.get(), dg.get(), dm.get(), dv.get(), n, testing::stream());
  const std::vector<float> gp = dp.download(), gm = dm.download(), gv = dv.download();
  EXPECT_TRUE(close(gp, p, {2e-8, 2 * kUlp}, "p"));
  EXPECT_TRUE(close(gm, m, {kUlp, 2 * kUlp}, "m"));
  EXPECT_TRUE(close(gv, v, {4e-12, 4 * kUlp}, "v"));
  RecordProperty("not_bitwise",
                 std::to_string(not_bitwise(gp, p) + not_bitwise(gm, m) + not_bitwise(gv, v)));
}

INSTANTIATE_TEST_SUITE_P(Cases, AdamCuda, ::testing::ValuesIn(adam_cases()), adam_case_name);

// adam_step_multi over many tensors of odd sizes, some not 16-byte aligned, some empty, equals one
// adam_step per tensor bit for bit. 20 tensors fit one launch; 60 need two (48 per launch).
void check_multi_equals_single(int64_t count, uint64_t seed) {
  std::vector<int64_t> sizes, offsets;
  const int64_t odd[] = {1, 3, 7, 64, 1023, 4095, 4096, 4097, 5000, 12345, 0, 100003, 513};
  int64_t total = 0;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t n = odd[(k * 7 + static_cast<int64_t>(seed)) % 13];
    // Tensor k starts at `total` (+1 float for every third tensor: unaligned).
    total += k % 3 == 2 ? 1 : (4 - total % 4) % 4;
    offsets.push_back(total);
    sizes.push_back(n);
    total += n;
  }
  const f::AdamCoeffs c = adam_coeffs(2e-4, 0.5, 0.999, 1e-8, 0.01, true, 7);
  const std::vector<float> p0 = random_vector(total, seed, -1.0f, 1.0f);
  const std::vector<float> g = random_vector(total, seed + 1, -1.0f, 1.0f);
  const std::vector<float> m0 = random_vector(total, seed + 2, -0.1f, 0.1f);
  const std::vector<float> v0 = random_vector(total, seed + 3, 1e-4f, 1e-2f);
  DeviceBuffer<float> dg(g), p1(p0), m1(m0), v1(v0), p2(p0), m2(m0), v2(v0);

  std::vector<cuda::AdamTensor> tensors;
  for (int64_t k = 0; k < count; ++k) {
    const int64_t o = offsets[k];
    cuda::adam_step(c, p1.get() + o, dg.get() + o, m1.get() + o, v1.get() + o, sizes[k],
                    testing::stream());
    tensors.push_back({p2.get() + o, dg.get() + o, m2.get() + o, v2.get() + o, sizes[k]});
  }
  cuda::adam_step_multi(c, tensors.data(), count, testing::stream());
  const std::vector<float> a = p1.download(), b = p2.download();
  EXPECT_TRUE(bit_equal(a, b)) << not_bitwise(a, b) << " of " << total << " p differ";
  EXPECT_TRUE(bit_equal(m1.download(), m2.download())) << "m differs";
  EXPECT_TRUE(bit_equal(v1.download(), v2.download())) << "v differs";
  EXPECT_FALSE(bit_equal(a, p0)) << "nothing was updated";
  // Elements between the tensors (alignment padding) are nobody's: untouched.
  for (int64_t k = 0; k < count; ++k) {
    const int64_t gap_begin = k == 0 ? 0 : offsets[k - 1] + sizes[k - 1];
    for (int64_t i = gap_begin; i < offsets[k]; ++i) ASSERT_EQ(b[i], p0[i]) << "padding at " << i;
  }
}

TEST(AdamMultiCuda, TwentyTensorsEqualOneStepEach) {
  LL_REQUIRE_GPU();
  check_multi_equals_single(20, 11);
}

TEST(AdamMultiCuda, SixtyTensorsTakeTwoLaunchesAndEqualOneStepEach) {
  LL_REQUIRE_GPU();
  check_multi_equals_single(60, 12);
}

// ---- SGD --------------------------------------------------------------------------------------

struct SgdHyper {
  float lr, momentum, dampening, weight_decay;
  bool nesterov, first_step, with_buf;
};

struct SgdCase {
  SgdHyper h;
  int64_t n, offset;
};

std::vector<SgdCase> sgd_cases() {
  const SgdHyper hyper[] = {
      // lr, momentum, dampening, wd, nesterov, first, buf
      {0.1f, 0.0f, 0.0f, 0.0f, false, true, false},    // plain SGD, no buffer
      {0.1f, 0.0f, 0.0f, 1e-4f, false, false, true},   // no momentum, buffer given: untouched
      {0.05f, 0.9f, 0.0f, 0.0f, false, true, true},    // first step: buf = g
      {0.05f, 0.9f, 0.0f, 0.0f, false, false, true},
      {0.05f, 0.9f, 0.1f, 1e-4f, false, false, true},  // dampening, weight decay
      {0.05f, 0.9f, 0.0f, 0.0f, true, false, true},    // Nesterov
      {0.05f, 0.8f, 0.0f, 1e-2f, true, true, true},    // Nesterov, first step, weight decay
  };
  std::vector<SgdCase> v;
  for (const SgdHyper& h : hyper) {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{1023}, int64_t{4097}}) {
      for (int64_t offset : {int64_t{0}, int64_t{1}}) v.push_back({h, n, offset});
    }
  }
  return v;
}

std::string sgd_case_name(const ::testing::TestParamInfo<SgdCase>& info) {
  const SgdHyper& h = info.param.h;
  std::string s = std::string("case") + std::to_string(info.index / 8) +
                  (h.momentum != 0.0f ? "_momentum" : "_plain");
  if (h.nesterov) s += "_nesterov";
  if (h.dampening != 0.0f) s += "_dampening";
  if (h.weight_decay != 0.0f) s += "_wd";
  if (h.first_step) s += "_first";
  return s + "_n" + std::to_string(info.param.n) + "_off" + std::to_string(info.param.offset);
}

class SgdCuda : public ::testing::TestWithParam<SgdCase> {};

TEST_P(SgdCuda, MatchesCpu) {
  LL_REQUIRE_GPU();
  const SgdCase& sc = GetParam();
  const SgdHyper& h = sc.h;
  const int64_t n = sc.n;
  const f::SgdCoeffs c{h.lr, h.momentum, h.dampening, h.weight_decay, h.nesterov, h.first_step};
  const std::vector<float> p0 = random_vector(n, 5, -1.0f, 1.0f);
  const std::vector<float> g = random_vector(n, 6, -1.0f, 1.0f);
  const std::vector<float> buf0 = random_vector(n, 7, -1.0f, 1.0f);
  std::vector<float> p = p0, buf = buf0;
  cpu::sgd_step(c, p.data(), g.data(), h.with_buf ? buf.data() : nullptr, n);

  Shifted dp(p0, sc.offset), dg(g, sc.offset), dbuf(buf0, sc.offset);
  cuda::sgd_step(c, dp.get(), dg.get(), h.with_buf ? dbuf.get() : nullptr, n, testing::stream());
  const std::vector<float> gp = dp.download(), gbuf = dbuf.download();
  EXPECT_TRUE(close(gp, p, {1e-7, 2 * kUlp}, "p"));
  if (h.momentum == 0.0f) {
    EXPECT_TRUE(bit_equal(gbuf, buf0)) << "the buffer is not touched without momentum";
  } else {
    EXPECT_TRUE(close(gbuf, buf, {2 * kUlp, 2 * kUlp}, "buf"));
  }
  RecordProperty("not_bitwise", std::to_string(not_bitwise(gp, p) + not_bitwise(gbuf, buf)));
}

INSTANTIATE_TEST_SUITE_P(Cases, SgdCuda, ::testing::ValuesIn(sgd_cases()), sgd_case_name);

TEST(SgdCudaArgs, MomentumWithoutBufferThrowsLikeTheCpu) {
  LL_REQUIRE_GPU();
  const f::SgdCoeffs c{0.1f, 0.9f, 0.0f, 0.0f, false, true};
  DeviceBuffer<float> p(8), g(8);
  EXPECT_THROW(cuda::sgd_step(c, p.get(), g.get(), nullptr, 8, testing::stream()),
               std::invalid_argument);
}

}  // namespace
}  // namespace ll::kernels
