// test_gemm_cuda.cpp: the CUDA GEMM (single and strided-batched, kernels/cuda/gemm.cu) and the
// bias kernels (kernels/cuda/bias.cu) against the CPU references, and the TF32 switch.
//
// GEMM tolerance: element i passes when
//   |got_i - ref_i| <= 1e-5 (|ref_i| + mag_i),  mag_i = |alpha| (|op(A)| |op(B)|)_i + |beta| |C0_i|
// (mag computed by the CPU GEMM on absolute values): the sum of the magnitudes of the terms of
// element i, so the bound scales with the length K of the sum (see tests/cuda/test_conv_cuda.cpp).
// TF32: with allow_tf32(false) the largest |err| / mag of a 512 x 512 x 1024 product must stay
// below 2e-6, FP32's level (measured rounding of random-signed sums is ~1e-7 of mag), which TF32
// (inputs rounded to 10 mantissa bits: ~3e-4 / sqrt(K) ~ 1e-5 of mag, more at the worst element)
// would exceed; with allow_tf32(true) only a loose 1e-3 is required.
// Bias: bias_add is one float addition per element, so it must equal the CPU bit for bit; the
// bias gradient (float64 sums in both, in different orders) must agree within 1e-6 (|ref| + mag)
// and be bit-identical from run to run.
// Outputs are poisoned with NaN first where the kernel must not read them (beta = 0, the bias
// gradient), so an element left unwritten fails.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iostream>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "kernels/bias.h"
#include "kernels/gemm.h"
#include "tests/cuda/cuda_harness.h"

namespace ll {
namespace {

using testing::DeviceBuffer;
namespace cpu = kernels::cpu;
namespace kc = kernels::cuda;

std::vector<float> abs_of(const std::vector<float>& v) {
  std::vector<float> a(v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = std::fabs(v[i]);
  return a;
}

// |got - ref| <= eps (|ref| + mag) element by element; NaN fails. Reports the largest |err| / mag.
::testing::AssertionResult close_to(const std::vector<float>& got, const std::vector<float>& ref,
                                    const std::vector<float>& mag, double eps,
                                    const std::string& what, double* worst_out = nullptr) {
  if (got.size() != ref.size()) {
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " vs " << ref.size();
  }
  int64_t bad = 0;
  double worst = 0.0;
  std::ostringstream first;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], r = ref[i], m = mag[i];
    const double err = std::fabs(g - r), bound = eps * (std::fabs(r) + m);
    if (!(err <= bound)) {
      if (bad < 5) {
        first << "\n  [" << i << "] got " << g << " expected " << r << " (|err| " << err
              << ", bound " << bound << ")";
      }
      ++bad;
    }
    if (!std::isfinite(err)) {
      worst = INFINITY;
    } else if (m > 0.0) {
      worst = std::max(worst, err / m);
    }
  }
  if (worst_out) *worst_out = worst;
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": " << bad << " of " << got.size()
                                       << " elements outside " << eps << " (|ref| + sum |terms|);"
                                       << " largest |err| / sum |terms| " << worst << first.str();
}

// Sets allow_tf32 for one scope and restores it.
class Tf32 {
 public:
  explicit Tf32(bool allow) : saved_(kc::allow_tf32()) { kc::set_allow_tf32(allow); }
  ~Tf32() { kc::set_allow_tf32(saved_); }
  Tf32(const Tf32&) = delete;
  Tf32& operator=(const Tf32&) = delete;

 private:
  bool saved_;
};

// ---- GEMM ---------------------------------------------------------------------------------------

struct GemmCase {
  bool ta = false, tb = false;
  int64_t M = 1, N = 1, K = 1;
  float alpha = 1.0f, beta = 0.0f;
  int64_t batch = 0;  // 0: gemm(); else gemm_strided_batched() with this many products
  bool shared_a = false;  // batched: stride_a = 0 (one A for every product)
};

std::string gemm_name(const GemmCase& c) {
  auto num = [](float v) {  // 0.5 -> "0p5", -2 -> "m2"
    std::ostringstream s;
    s << v;
    std::string t = s.str();
    for (char& ch : t) {
      if (ch == '.') ch = 'p';
      if (ch == '-') ch = 'm';
    }
    return t;
  };
  std::string name = std::string(c.ta ? "T" : "N") + (c.tb ? "T" : "N") + "_m" + std::to_string(c.M) +
                     "_n" + std::to_string(c.N) + "_k" + std::to_string(c.K) + "_a" + num(c.alpha) +
                     "_b" + num(c.beta);
  if (c.batch > 0) name += "_batch" + std::to_string(c.batch) + (c.shared_a ? "_shared_a" : "");
  return name;
}

void PrintTo(const GemmCase& c, std::ostream* os) { *os << gemm_name(c); }

std::vector<GemmCase> gemm_cases() {
  struct Size {
    int64_t M, N, K;
  };
  // odd sizes, 1s, long K, the MLP-VAE's Linear layers (batch 128: 784 -> 400 -> 20 and back)
  const Size sizes[] = {{1, 1, 1},     {7, 13, 5},     {33, 17, 1023}, {4097, 3, 7},
                        {2, 4097, 1},  {128, 400, 784}, {128, 784, 400}, {400, 784, 128},
                        {128, 20, 400}, {65, 129, 257}};
  const std::pair<float, float> scalars[] = {{1.0f, 0.0f}, {-2.0f, 0.75f}};
  std::vector<GemmCase> v;
  for (const bool ta : {false, true}) {
    for (const bool tb : {false, true}) {
      for (const Size& s : sizes) {
        for (const auto& [alpha, beta] : scalars) {
          GemmCase c;
          c.ta = ta, c.tb = tb, c.M = s.M, c.N = s.N, c.K = s.K, c.alpha = alpha, c.beta = beta;
          v.push_back(c);
        }
      }
      // an empty sum: C = beta C
      for (const float beta : {0.0f, 0.5f}) {
        GemmCase c;
        c.ta = ta, c.tb = tb, c.M = 5, c.N = 3, c.K = 0, c.beta = beta;
        v.push_back(c);
      }
      // batched, with a distinct and with a shared A
      for (const bool shared : {false, true}) {
        GemmCase c;
        c.ta = ta, c.tb = tb, c.M = 17, c.N = 33, c.K = 9, c.alpha = 0.5f, c.beta = shared ? 1.0f : 0.0f;
        c.batch = 3, c.shared_a = shared;
        v.push_back(c);
      }
    }
  }
  GemmCase many;  // more products than one cuBLAS call takes (65535)
  many.ta = true, many.M = 2, many.N = 3, many.K = 4, many.beta = 0.5f, many.batch = 70000;
  v.push_back(many);
  GemmCase empty_batched;
  empty_batched.M = 4, empty_batched.N = 6, empty_batched.K = 0, empty_batched.beta = 0.5f;
  empty_batched.batch = 2;
  v.push_back(empty_batched);
  return v;
}

class GemmCuda : public ::testing::TestWithParam<GemmCase> {
 protected:
  void SetUp() override { kc::set_allow_tf32(false); }
};

TEST_P(GemmCuda, MatchesCpu) {
  LL_REQUIRE_GPU();
  const GemmCase c = GetParam();
  const int64_t batch = std::max<int64_t>(c.batch, 1);
  const int64_t a_count = c.shared_a ? 1 : batch;
  // A is stored (M, K) or, transposed, (K, M); B (K, N) or (N, K); C (M, N): M K, K N, M N floats.
  const auto A = testing::random_vector(static_cast<size_t>(a_count * c.M * c.K), 11);
  const auto B = testing::random_vector(static_cast<size_t>(batch * c.K * c.N), 12);
  const auto C0 = testing::random_vector(static_cast<size_t>(batch * c.M * c.N), 13);
  std::vector<float> ref = C0, mag = abs_of(C0);
  const auto absA = abs_of(A), absB = abs_of(B);
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t ai = c.shared_a ? 0 : i;
    cpu::gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data() + ai * c.M * c.K, B.data() + i * c.K * c.N,
              c.beta, ref.data() + i * c.M * c.N);
    cpu::gemm(c.ta, c.tb, c.M, c.N, c.K, std::fabs(c.alpha), absA.data() + ai * c.M * c.K,
              absB.data() + i * c.K * c.N, std::fabs(c.beta), mag.data() + i * c.M * c.N);
  }
  DeviceBuffer<float> dA(A), dB(B), dC(C0);
  if (c.beta == 0.0f) dC.poison();  // beta = 0: C is not read
  if (c.batch == 0) {
    kc::gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, dA.get(), dB.get(), c.beta, dC.get(),
             testing::stream());
  } else {
    kc::gemm_strided_batched(c.ta, c.tb, c.M, c.N, c.K, c.alpha, dA.get(), c.shared_a ? 0 : c.M * c.K,
                             dB.get(), c.K * c.N, c.beta, dC.get(), c.M * c.N, c.batch,
                             testing::stream());
  }
  EXPECT_TRUE(close_to(dC.download(), ref, mag, 1e-5, gemm_name(c)));
}

INSTANTIATE_TEST_SUITE_P(Shapes, GemmCuda, ::testing::ValuesIn(gemm_cases()),
                         [](const ::testing::TestParamInfo<GemmCase>& info) {
                           return gemm_name(info.param);
                         });

// Host-only: sizes beyond cuBLAS's int are rejected before any GPU work.
TEST(GemmCudaShapes, RejectsSizesBeyondInt) {
  const int64_t big = int64_t{1} << 31;
  EXPECT_THROW(kc::gemm(false, false, big, 1, 1, 1.0f, nullptr, nullptr, 0.0f, nullptr, nullptr),
               std::invalid_argument);
  EXPECT_THROW(kc::gemm_strided_batched(false, false, 1, 1, 1, 1.0f, nullptr, 0, nullptr, 0, 0.0f,
                                        nullptr, 0, big, nullptr),
               std::invalid_argument);
}

// Largest |err| / mag of a 512 x 512 x 1024 GEMM under the current TF32 setting.
double square_gemm_error(bool allow_tf32) {
  const Tf32 tf32(allow_tf32);
  const int64_t M = 512, N = 512, K = 1024;
  const auto A = testing::random_vector(static_cast<size_t>(M * K), 21);
  const auto B = testing::random_vector(static_cast<size_t>(K * N), 22);
  std::vector<float> ref(static_cast<size_t>(M * N)), mag(ref.size());
  cpu::gemm(false, false, M, N, K, 1.0f, A.data(), B.data(), 0.0f, ref.data());
  cpu::gemm(false, false, M, N, K, 1.0f, abs_of(A).data(), abs_of(B).data(), 0.0f, mag.data());
  DeviceBuffer<float> dA(A), dB(B), dC(ref.size());
  dC.poison();
  kc::gemm(false, false, M, N, K, 1.0f, dA.get(), dB.get(), 0.0f, dC.get(), testing::stream());
  double worst = 0.0;
  (void)close_to(dC.download(), ref, mag, 1.0, "square", &worst);
  return worst;
}

TEST(GemmCudaPrecision, Fp32UnlessTf32IsAllowed) {
  LL_REQUIRE_GPU();
  const double fp32 = square_gemm_error(false);
  const double tf32 = square_gemm_error(true);
  std::cout << "largest |err| / sum |terms|: FP32 " << fp32 << ", TF32 allowed " << tf32 << "\n";
  EXPECT_LE(fp32, 2e-6) << "allow_tf32(false) must give FP32 accuracy";
  EXPECT_LE(tf32, 1e-3);
  EXPECT_FALSE(kc::allow_tf32()) << "the setting is restored";
}

// ---- bias ---------------------------------------------------------------------------------------

struct BiasCase {
  int64_t N, C, inner;
  int64_t offset;  // floats between the allocation and y / gy (1: not 16-byte aligned)
};

std::string bias_name(const BiasCase& c) {
  return "n" + std::to_string(c.N) + "_c" + std::to_string(c.C) + "_inner" + std::to_string(c.inner) +
         (c.offset ? "_offset" + std::to_string(c.offset) : "");
}

void PrintTo(const BiasCase& c, std::ostream* os) { *os << bias_name(c); }

const BiasCase kBiasCases[] = {
    {1, 1, 1, 0},      {7, 3, 1, 0},       {128, 784, 1, 0},  {128, 20, 1, 1},   {3, 5, 7, 0},
    {2, 64, 1023, 0},  {4, 3, 4097, 1},    {128, 512, 16, 0}, {128, 512, 16, 1}, {5, 7, 4, 2},
    {128, 64, 1024, 0}, {1, 3, 128 * 128, 0}, {300, 2, 9, 0},  {1, 1, 70000, 3}};

class BiasCuda : public ::testing::TestWithParam<BiasCase> {};

TEST_P(BiasCuda, AddMatchesCpuBitForBit) {
  LL_REQUIRE_GPU();
  const BiasCase c = GetParam();
  const int64_t n = c.N * c.C * c.inner;
  const auto y0 = testing::random_vector(static_cast<size_t>(n + c.offset), 31);
  const auto b = testing::random_vector(static_cast<size_t>(c.C), 32);
  std::vector<float> ref = y0;
  cpu::bias_add(ref.data() + c.offset, b.data(), c.N, c.C, c.inner);
  DeviceBuffer<float> dy(y0), db(b);
  kc::bias_add(dy.get() + c.offset, db.get(), c.N, c.C, c.inner, testing::stream());
  EXPECT_TRUE(ll::testing::bit_equal(dy.download(), ref)) << bias_name(c);
}

TEST_P(BiasCuda, BackwardMatchesCpuAndIsDeterministic) {
  LL_REQUIRE_GPU();
  const BiasCase c = GetParam();
  const int64_t n = c.N * c.C * c.inner;
  const auto gy = testing::random_vector(static_cast<size_t>(n + c.offset), 33);
  std::vector<float> ref(static_cast<size_t>(c.C)), mag(ref.size());
  cpu::bias_backward(gy.data() + c.offset, ref.data(), c.N, c.C, c.inner);
  const auto agy = abs_of(gy);
  cpu::bias_backward(agy.data() + c.offset, mag.data(), c.N, c.C, c.inner);
  DeviceBuffer<float> dgy(gy), dgb(ref.size());
  std::vector<float> first;
  for (int run = 0; run < 2; ++run) {
    dgb.poison();
    kc::bias_backward(dgy.get() + c.offset, dgb.get(), c.N, c.C, c.inner, testing::stream());
    const auto got = dgb.download();
    if (run == 0) {
      EXPECT_TRUE(close_to(got, ref, mag, 1e-6, bias_name(c)));
      first = got;
    } else {
      EXPECT_TRUE(ll::testing::bit_equal(got, first)) << "second run differs";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, BiasCuda, ::testing::ValuesIn(kBiasCases),
                         [](const ::testing::TestParamInfo<BiasCase>& info) {
                           return bias_name(info.param);
                         });

TEST(BiasCudaEmpty, EmptyBatchGivesZeroGradient) {
  LL_REQUIRE_GPU();
  DeviceBuffer<float> gb(5);
  gb.poison();
  kc::bias_backward(nullptr, gb.get(), 0, 5, 16, testing::stream());
  EXPECT_EQ(gb.download(), std::vector<float>(5, 0.0f));
}

}  // namespace
}  // namespace ll
