// test_conv_kernels.cpp: the CPU GEMM, bias, conv2d and conv_transpose2d kernels against naive
// float64 loops written from the definitions in the headers (kernels/gemm.h, bias.h, conv2d.h,
// conv_transpose2d.h), plus adjoint identities, bit-for-bit determinism across thread counts and
// shape validation.
//
// Tolerance: atol 1e-4, rtol 1e-4 for everything. The inputs are uniform in [-1, 1); the longest
// float32 sums here (C*R*S = 1024 terms in forward, N*P*Q = 1024 in backward weight) reach values
// near 10 and err by at most 3.4e-5 (measured), inside 1e-4 + 1e-4 |ref|.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/bias.h"
#include "kernels/conv2d.h"
#include "kernels/conv_transpose2d.h"
#include "kernels/gemm.h"
#include "tests/common/compare.h"

namespace {

using ll::kernels::Conv2dShape;
using ll::kernels::ConvTranspose2dShape;
using ll::test::all_close;
using ll::test::random_vector;
using ll::test::Tolerance;
namespace cpu = ll::kernels::cpu;

constexpr Tolerance kTol{1e-4, 1e-4};
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

bool bit_identical(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// ---- GEMM ---------------------------------------------------------------------------------------

struct GemmCase {
  bool ta, tb;
  int64_t M, N, K;
  float alpha, beta;
};

std::string gemm_name(const ::testing::TestParamInfo<GemmCase>& info) {
  const GemmCase& c = info.param;
  auto num = [](float v) {  // 0.5 -> "0p5", -1 -> "m1"
    std::string s = std::to_string(v);
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
    for (char& ch : s) {
      if (ch == '.') ch = 'p';
      if (ch == '-') ch = 'm';
    }
    return s;
  };
  return std::string(c.ta ? "T" : "N") + (c.tb ? "T" : "N") + "_m" + std::to_string(c.M) + "_n" +
         std::to_string(c.N) + "_k" + std::to_string(c.K) + "_a" + num(c.alpha) + "_b" +
         num(c.beta);
}

void PrintTo(const GemmCase& c, std::ostream* os) { *os << gemm_name({c, 0}); }

class Gemm : public ::testing::TestWithParam<GemmCase> {};

TEST_P(Gemm, MatchesFloat64) {
  const GemmCase c = GetParam();
  // A is stored (M, K) or, transposed, (K, M); B (K, N) or (N, K); C (M, N).
  const auto A = random_vector(c.M * c.K, 1);
  const auto B = random_vector(c.K * c.N, 2);
  auto C = random_vector(c.M * c.N, 3);
  std::vector<double> ref(static_cast<size_t>(c.M * c.N));
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < c.N; ++j) {
      double s = 0.0;
      for (int64_t k = 0; k < c.K; ++k) {
        const double a = c.ta ? A[k * c.M + i] : A[i * c.K + k];
        const double b = c.tb ? B[j * c.K + k] : B[k * c.N + j];
        s += a * b;
      }
      ref[i * c.N + j] = c.alpha * s + (c.beta == 0.0f ? 0.0 : c.beta * double(C[i * c.N + j]));
    }
  }
  if (c.beta == 0.0f) std::fill(C.begin(), C.end(), kNaN);  // beta = 0 must not read C
  cpu::gemm(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), B.data(), c.beta, C.data());
  EXPECT_TRUE(all_close(C, ref, kTol, "gemm"));
}

std::vector<GemmCase> gemm_cases() {
  std::vector<GemmCase> v;
  // the last three are large enough for gemm to split C into row tiles, column tiles, odd tiles
  const int64_t shapes[][3] = {{1, 1, 1},   {7, 5, 3},      {13, 17, 19},  {64, 33, 129},
                               {3, 200, 1}, {200, 70, 100}, {70, 300, 80}, {257, 130, 33}};
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      for (const auto& s : shapes) v.push_back({ta, tb, s[0], s[1], s[2], 1.0f, 0.0f});
      v.push_back({ta, tb, 9, 11, 6, 0.5f, 2.0f});
      v.push_back({ta, tb, 9, 11, 6, -1.0f, 1.0f});
      v.push_back({ta, tb, 9, 11, 6, 0.0f, 0.5f});
    }
  }
  v.push_back({false, false, 5, 4, 0, 1.0f, 0.5f});  // K = 0: C = beta C
  v.push_back({true, false, 5, 4, 0, 1.0f, 0.0f});   // K = 0, beta = 0: C = 0
  return v;
}

INSTANTIATE_TEST_SUITE_P(Cpu, Gemm, ::testing::ValuesIn(gemm_cases()), gemm_name);

TEST(GemmEdge, EmptyOutputTouchesNothing) {
  std::vector<float> C = {42.0f};
  const float A = 1.0f, B = 1.0f;
  cpu::gemm(false, false, 0, 1, 3, 1.0f, &A, &B, 0.0f, C.data());
  cpu::gemm(true, true, 1, 0, 3, 1.0f, &A, &B, 0.0f, C.data());
  EXPECT_EQ(C[0], 42.0f);
}

// ---- bias ---------------------------------------------------------------------------------------

TEST(Bias, AddAndBackwardMatchFloat64) {
  const int64_t shapes[][3] = {{1, 1, 1}, {4, 3, 1}, {2, 5, 7}, {3, 4, 6000}, {64, 300, 1}};
  for (const auto& sh : shapes) {
    const int64_t N = sh[0], C = sh[1], inner = sh[2];
    const std::string what =
        "N " + std::to_string(N) + " C " + std::to_string(C) + " inner " + std::to_string(inner);
    auto y = random_vector(N * C * inner, 11);
    const auto b = random_vector(C, 12);
    std::vector<double> ref(y.size());
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < inner; ++i) {
          const int64_t idx = (n * C + c) * inner + i;
          ref[idx] = double(y[idx]) + b[c];
        }
    cpu::bias_add(y.data(), b.data(), N, C, inner);
    EXPECT_TRUE(all_close(y, ref, kTol, "bias_add " + what));

    const auto gy = random_vector(N * C * inner, 13);
    std::vector<double> gref(static_cast<size_t>(C), 0.0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < inner; ++i) gref[c] += gy[(n * C + c) * inner + i];
    std::vector<float> gb(static_cast<size_t>(C), kNaN);
    cpu::bias_backward(gy.data(), gb.data(), N, C, inner);
    EXPECT_TRUE(all_close(gb, gref, kTol, "bias_backward " + what));
  }
}

// ---- conv2d and conv_transpose2d cases ----------------------------------------------------------

// One case serves both ops: conv2d x (N, C, H, W) -> (N, K, P, Q); conv_transpose2d x (N, C, H, W)
// -> (N, K, P, Q) with output padding op (conv2d ignores it).
struct ConvCase {
  int64_t N, C, H, W, K, R, S, sh, sw, ph, pw, oph = 0, opw = 0;
};

Conv2dShape conv_shape(const ConvCase& c) {
  Conv2dShape s;
  s.N = c.N, s.C = c.C, s.H = c.H, s.W = c.W, s.K = c.K, s.R = c.R, s.S = c.S;
  s.stride_h = c.sh, s.stride_w = c.sw, s.pad_h = c.ph, s.pad_w = c.pw;
  return s;
}

ConvTranspose2dShape convt_shape(const ConvCase& c) {
  ConvTranspose2dShape s;
  s.N = c.N, s.C = c.C, s.H = c.H, s.W = c.W, s.K = c.K, s.R = c.R, s.S = c.S;
  s.stride_h = c.sh, s.stride_w = c.sw, s.pad_h = c.ph, s.pad_w = c.pw;
  s.output_padding_h = c.oph, s.output_padding_w = c.opw;
  return s;
}

// e.g. n2_c3_h7_w5_k4_r3s3_st2_p1, st2x1 for stride (2, 1), op1 for output_padding 1
std::string case_name(const ConvCase& c, bool with_op) {
  auto pair = [](int64_t a, int64_t b) {
    return a == b ? std::to_string(a) : std::to_string(a) + "x" + std::to_string(b);
  };
  std::string s = "n" + std::to_string(c.N) + "_c" + std::to_string(c.C) + "_h" +
                  std::to_string(c.H) + "_w" + std::to_string(c.W) + "_k" + std::to_string(c.K) +
                  "_r" + std::to_string(c.R) + "s" + std::to_string(c.S) + "_st" +
                  pair(c.sh, c.sw) + "_p" + pair(c.ph, c.pw);
  if (with_op) s += "_op" + pair(c.oph, c.opw);
  return s;
}

void PrintTo(const ConvCase& c, std::ostream* os) { *os << case_name(c, true); }

// ---- conv2d references, straight from conv2d.h --------------------------------------------------

// y[n,k,p,q] = bias[k] + sum_{c,r,s} x[n, c, p sh - ph + r, q sw - pw + s] w[k,c,r,s]
std::vector<double> ref_conv2d(const Conv2dShape& s, const std::vector<float>& x,
                               const std::vector<float>& w, const float* bias) {
  const int64_t P = s.P(), Q = s.Q();
  std::vector<double> y(static_cast<size_t>(s.N * s.K * P * Q));
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t k = 0; k < s.K; ++k)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t q = 0; q < Q; ++q) {
          double acc = bias ? bias[k] : 0.0;
          for (int64_t c = 0; c < s.C; ++c)
            for (int64_t r = 0; r < s.R; ++r)
              for (int64_t t = 0; t < s.S; ++t) {
                const int64_t h = p * s.stride_h - s.pad_h + r, v = q * s.stride_w - s.pad_w + t;
                if (h < 0 || h >= s.H || v < 0 || v >= s.W) continue;
                acc += double(x[((n * s.C + c) * s.H + h) * s.W + v]) *
                       w[((k * s.C + c) * s.R + r) * s.S + t];
              }
          y[((n * s.K + k) * P + p) * Q + q] = acc;
        }
  return y;
}

// gx = dL/dx: every term x[n,c,h,v] w[k,c,r,t] of y[n,k,p,q] sends gy[n,k,p,q] w[k,c,r,t] to x.
std::vector<double> ref_conv2d_backward_data(const Conv2dShape& s, const std::vector<float>& gy,
                                             const std::vector<float>& w) {
  const int64_t P = s.P(), Q = s.Q();
  std::vector<double> gx(static_cast<size_t>(s.N * s.C * s.H * s.W), 0.0);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t k = 0; k < s.K; ++k)
      for (int64_t p = 0; p < P; ++p)
        for (int64_t q = 0; q < Q; ++q)
          for (int64_t c = 0; c < s.C; ++c)
            for (int64_t r = 0; r < s.R; ++r)
              for (int64_t t = 0; t < s.S; ++t) {
                const int64_t h = p * s.stride_h - s.pad_h + r, v = q * s.stride_w - s.pad_w + t;
                if (h < 0 || h >= s.H || v < 0 || v >= s.W) continue;
                gx[((n * s.C + c) * s.H + h) * s.W + v] +=
                    double(gy[((n * s.K + k) * P + p) * Q + q]) *
                    w[((k * s.C + c) * s.R + r) * s.S + t];
              }
  return gx;
}

// gw[k,c,r,t] = sum_{n,p,q} gy[n,k,p,q] x[n, c, p sh - ph + r, q sw - pw + t]
std::vector<double> ref_conv2d_backward_weight(const Conv2dShape& s, const std::vector<float>& x,
                                               const std::vector<float>& gy) {
  const int64_t P = s.P(), Q = s.Q();
  std::vector<double> gw(static_cast<size_t>(s.K * s.C * s.R * s.S), 0.0);
  for (int64_t k = 0; k < s.K; ++k)
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t r = 0; r < s.R; ++r)
        for (int64_t t = 0; t < s.S; ++t) {
          double acc = 0.0;
          for (int64_t n = 0; n < s.N; ++n)
            for (int64_t p = 0; p < P; ++p)
              for (int64_t q = 0; q < Q; ++q) {
                const int64_t h = p * s.stride_h - s.pad_h + r, v = q * s.stride_w - s.pad_w + t;
                if (h < 0 || h >= s.H || v < 0 || v >= s.W) continue;
                acc += double(gy[((n * s.K + k) * P + p) * Q + q]) *
                       x[((n * s.C + c) * s.H + h) * s.W + v];
              }
          gw[((k * s.C + c) * s.R + r) * s.S + t] = acc;
        }
  return gw;
}

// ---- conv_transpose2d references, straight from conv_transpose2d.h ------------------------------

// y[n, k, h sh - ph + r, v sw - pw + t] += x[n,c,h,v] w[c,k,r,t]  (inside P x Q only) + bias[k]
std::vector<double> ref_convt(const ConvTranspose2dShape& s, const std::vector<float>& x,
                              const std::vector<float>& w, const float* bias) {
  const int64_t P = s.P(), Q = s.Q();
  std::vector<double> y(static_cast<size_t>(s.N * s.K * P * Q), 0.0);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t k = 0; k < s.K; ++k)
      for (int64_t i = 0; i < P * Q; ++i) y[(n * s.K + k) * P * Q + i] = bias ? bias[k] : 0.0;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t h = 0; h < s.H; ++h)
        for (int64_t v = 0; v < s.W; ++v)
          for (int64_t k = 0; k < s.K; ++k)
            for (int64_t r = 0; r < s.R; ++r)
              for (int64_t t = 0; t < s.S; ++t) {
                const int64_t p = h * s.stride_h - s.pad_h + r, q = v * s.stride_w - s.pad_w + t;
                if (p < 0 || p >= P || q < 0 || q >= Q) continue;
                y[((n * s.K + k) * P + p) * Q + q] +=
                    double(x[((n * s.C + c) * s.H + h) * s.W + v]) *
                    w[((c * s.K + k) * s.R + r) * s.S + t];
              }
  return y;
}

// gx[n,c,h,v] = sum_{k,r,t} gy[n, k, h sh - ph + r, v sw - pw + t] w[c,k,r,t]
std::vector<double> ref_convt_backward_data(const ConvTranspose2dShape& s,
                                            const std::vector<float>& gy,
                                            const std::vector<float>& w) {
  const int64_t P = s.P(), Q = s.Q();
  std::vector<double> gx(static_cast<size_t>(s.N * s.C * s.H * s.W), 0.0);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t c = 0; c < s.C; ++c)
      for (int64_t h = 0; h < s.H; ++h)
        for (int64_t v = 0; v < s.W; ++v) {
          double acc = 0.0;
          for (int64_t k = 0; k < s.K; ++k)
            for (int64_t r = 0; r < s.R; ++r)
              for (int64_t t = 0; t < s.S; ++t) {
                const int64_t p = h * s.stride_h - s.pad_h + r, q = v * s.stride_w - s.pad_w + t;
                if (p < 0 || p >= P || q < 0 || q >= Q) continue;
                acc += double(gy[((n * s.K + k) * P + p) * Q + q]) *
                       w[((c * s.K + k) * s.R + r) * s.S + t];
              }
          gx[((n * s.C + c) * s.H + h) * s.W + v] = acc;
        }
  return gx;
}

// gw[c,k,r,t] = sum_{n,h,v} x[n,c,h,v] gy[n, k, h sh - ph + r, v sw - pw + t]
std::vector<double> ref_convt_backward_weight(const ConvTranspose2dShape& s,
                                              const std::vector<float>& x,
                                              const std::vector<float>& gy) {
  const int64_t P = s.P(), Q = s.Q();
  std::vector<double> gw(static_cast<size_t>(s.C * s.K * s.R * s.S), 0.0);
  for (int64_t c = 0; c < s.C; ++c)
    for (int64_t k = 0; k < s.K; ++k)
      for (int64_t r = 0; r < s.R; ++r)
        for (int64_t t = 0; t < s.S; ++t) {
          double acc = 0.0;
          for (int64_t n = 0; n < s.N; ++n)
            for (int64_t h = 0; h < s.H; ++h)
              for (int64_t v = 0; v < s.W; ++v) {
                const int64_t p = h * s.stride_h - s.pad_h + r, q = v * s.stride_w - s.pad_w + t;
                if (p < 0 || p >= P || q < 0 || q >= Q) continue;
                acc += double(x[((n * s.C + c) * s.H + h) * s.W + v]) *
                       gy[((n * s.K + k) * P + p) * Q + q];
              }
          gw[((c * s.K + k) * s.R + r) * s.S + t] = acc;
        }
  return gw;
}

// ---- conv2d tests -------------------------------------------------------------------------------

class Conv2d : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv2d, ForwardMatchesFloat64) {
  const Conv2dShape s = conv_shape(GetParam());
  const auto x = random_vector(s.N * s.C * s.H * s.W, 21);
  const auto w = random_vector(s.K * s.C * s.R * s.S, 22);
  const auto b = random_vector(s.K, 23);
  std::vector<float> y(static_cast<size_t>(s.N * s.K * s.P() * s.Q()), kNaN);
  cpu::conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
  EXPECT_TRUE(all_close(y, ref_conv2d(s, x, w, b.data()), kTol, "conv2d_forward"));
  std::fill(y.begin(), y.end(), kNaN);
  cpu::conv2d_forward(s, x.data(), w.data(), nullptr, y.data());
  EXPECT_TRUE(all_close(y, ref_conv2d(s, x, w, nullptr), kTol, "conv2d_forward, no bias"));
}

TEST_P(Conv2d, BackwardDataMatchesFloat64) {
  const Conv2dShape s = conv_shape(GetParam());
  const auto gy = random_vector(s.N * s.K * s.P() * s.Q(), 24);
  const auto w = random_vector(s.K * s.C * s.R * s.S, 25);
  std::vector<float> gx(static_cast<size_t>(s.N * s.C * s.H * s.W), kNaN);
  cpu::conv2d_backward_data(s, gy.data(), w.data(), gx.data());
  EXPECT_TRUE(all_close(gx, ref_conv2d_backward_data(s, gy, w), kTol, "conv2d_backward_data"));
}

TEST_P(Conv2d, BackwardWeightMatchesFloat64) {
  const Conv2dShape s = conv_shape(GetParam());
  const auto x = random_vector(s.N * s.C * s.H * s.W, 26);
  const auto gy = random_vector(s.N * s.K * s.P() * s.Q(), 27);
  std::vector<float> gw(static_cast<size_t>(s.K * s.C * s.R * s.S), kNaN);
  cpu::conv2d_backward_weight(s, x.data(), gy.data(), gw.data());
  EXPECT_TRUE(all_close(gw, ref_conv2d_backward_weight(s, x, gy), kTol, "conv2d_backward_weight"));
}

// <conv(x), y> == <x, conv^T(y)> and, conv being linear in w too, <conv_w(x), y> == <w, gw(x, y)>.
TEST_P(Conv2d, AdjointIdentities) {
  const Conv2dShape s = conv_shape(GetParam());
  const auto x = random_vector(s.N * s.C * s.H * s.W, 28);
  const auto w = random_vector(s.K * s.C * s.R * s.S, 29);
  const auto gy = random_vector(s.N * s.K * s.P() * s.Q(), 30);
  std::vector<float> y(gy.size()), gx(x.size()), gw(w.size());
  cpu::conv2d_forward(s, x.data(), w.data(), nullptr, y.data());
  cpu::conv2d_backward_data(s, gy.data(), w.data(), gx.data());
  cpu::conv2d_backward_weight(s, x.data(), gy.data(), gw.data());
  const double lhs = dot(y, gy);
  EXPECT_NEAR(lhs, dot(x, gx), 1e-4 * (1.0 + std::fabs(lhs))) << "<conv(x), y> vs <x, conv^T(y)>";
  EXPECT_NEAR(lhs, dot(w, gw), 1e-4 * (1.0 + std::fabs(lhs))) << "<conv(x), y> vs <w, gw(x, y)>";
}

std::vector<ConvCase> conv2d_cases() {
  // N, C, H, W, K, R, S, stride h/w, pad h/w
  return {
      {2, 3, 7, 5, 4, 3, 3, 2, 2, 1, 1},       // odd sizes, C != K
      {1, 1, 5, 5, 1, 1, 1, 1, 1, 0, 0},       // 1x1, single channel
      {1, 2, 6, 6, 3, 1, 1, 2, 2, 0, 0},       // 1x1 with stride 2
      {2, 4, 8, 8, 5, 4, 4, 2, 2, 1, 1},       // DCGAN-style 4x4 s2 p1
      {3, 2, 9, 7, 3, 5, 3, 1, 1, 2, 2},       // non-square 5x3 kernel, padding 2
      {1, 3, 10, 11, 2, 3, 3, 3, 3, 1, 1},     // stride 3
      {2, 5, 7, 5, 6, 3, 3, 1, 1, 1, 1},       // same-size 3x3
      {1, 2, 4, 4, 3, 4, 4, 1, 1, 0, 0},       // output 1x1
      {2, 3, 7, 9, 4, 3, 5, 2, 3, 2, 1},       // stride (2, 3), padding (2, 1)
      {1, 2, 3, 3, 2, 3, 3, 1, 1, 2, 2},       // padding reaches past the image
      {1, 2, 5, 4, 3, 1, 1, 1, 1, 2, 2},       // 1x1 with padding 2: zero border
      {2, 3, 6, 7, 2, 2, 2, 3, 2, 0, 1},       // kernel 2x2, stride (3, 2): rows skipped
      {2, 1, 28, 28, 32, 4, 4, 2, 2, 1, 1},    // conv VAE layer 1
      {2, 32, 14, 14, 64, 4, 4, 2, 2, 1, 1},   // conv VAE layer 2
      {4, 64, 32, 32, 128, 4, 4, 2, 2, 1, 1},  // DCGAN-64 layer: several image groups
      {2, 3, 34, 33, 4, 3, 3, 1, 1, 1, 1},     // rows wider than 32 floats: the polyphase path
      {1, 2, 40, 37, 3, 5, 5, 3, 3, 2, 2},     // the same with stride 3
      {2, 2, 20, 20, 3, 3, 3, 1, 1, 1, 1},     // output rows of 20 > 16 floats
      {1, 2, 4, 3, 2, 9, 9, 1, 1, 4, 4},       // padding wider than the image: taps that read none of it
      {2, 3, 32, 32, 4, 4, 4, 2, 2, 1, 1},     // 32-float rows (DCGAN-64's 32 -> 16 layer)
  };
}

INSTANTIATE_TEST_SUITE_P(Cpu, Conv2d, ::testing::ValuesIn(conv2d_cases()),
                         [](const auto& info) { return case_name(info.param, false); });

// ---- conv_transpose2d tests ---------------------------------------------------------------------

class ConvTranspose2d : public ::testing::TestWithParam<ConvCase> {};

TEST_P(ConvTranspose2d, ForwardMatchesFloat64) {
  const ConvTranspose2dShape s = convt_shape(GetParam());
  const auto x = random_vector(s.N * s.C * s.H * s.W, 31);
  const auto w = random_vector(s.C * s.K * s.R * s.S, 32);
  const auto b = random_vector(s.K, 33);
  std::vector<float> y(static_cast<size_t>(s.N * s.K * s.P() * s.Q()), kNaN);
  cpu::conv_transpose2d_forward(s, x.data(), w.data(), b.data(), y.data());
  EXPECT_TRUE(all_close(y, ref_convt(s, x, w, b.data()), kTol, "conv_transpose2d_forward"));
  std::fill(y.begin(), y.end(), kNaN);
  cpu::conv_transpose2d_forward(s, x.data(), w.data(), nullptr, y.data());
  EXPECT_TRUE(all_close(y, ref_convt(s, x, w, nullptr), kTol, "conv_transpose2d_forward, no bias"));
}

TEST_P(ConvTranspose2d, BackwardDataMatchesFloat64) {
  const ConvTranspose2dShape s = convt_shape(GetParam());
  const auto gy = random_vector(s.N * s.K * s.P() * s.Q(), 34);
  const auto w = random_vector(s.C * s.K * s.R * s.S, 35);
  std::vector<float> gx(static_cast<size_t>(s.N * s.C * s.H * s.W), kNaN);
  cpu::conv_transpose2d_backward_data(s, gy.data(), w.data(), gx.data());
  EXPECT_TRUE(
      all_close(gx, ref_convt_backward_data(s, gy, w), kTol, "conv_transpose2d_backward_data"));
}

TEST_P(ConvTranspose2d, BackwardWeightMatchesFloat64) {
  const ConvTranspose2dShape s = convt_shape(GetParam());
  const auto x = random_vector(s.N * s.C * s.H * s.W, 36);
  const auto gy = random_vector(s.N * s.K * s.P() * s.Q(), 37);
  std::vector<float> gw(static_cast<size_t>(s.C * s.K * s.R * s.S), kNaN);
  cpu::conv_transpose2d_backward_weight(s, x.data(), gy.data(), gw.data());
  EXPECT_TRUE(
      all_close(gw, ref_convt_backward_weight(s, x, gy), kTol, "conv_transpose2d_backward_weight"));
}

TEST_P(ConvTranspose2d, AdjointIdentities) {
  const ConvTranspose2dShape s = convt_shape(GetParam());
  const auto x = random_vector(s.N * s.C * s.H * s.W, 38);
  const auto w = random_vector(s.C * s.K * s.R * s.S, 39);
  const auto gy = random_vector(s.N * s.K * s.P() * s.Q(), 40);
  std::vector<float> y(gy.size()), gx(x.size()), gw(w.size());
  cpu::conv_transpose2d_forward(s, x.data(), w.data(), nullptr, y.data());
  cpu::conv_transpose2d_backward_data(s, gy.data(), w.data(), gx.data());
  cpu::conv_transpose2d_backward_weight(s, x.data(), gy.data(), gw.data());
  const double lhs = dot(y, gy);
  EXPECT_NEAR(lhs, dot(x, gx), 1e-4 * (1.0 + std::fabs(lhs))) << "<convT(x), y> vs <x, convT^T(y)>";
  EXPECT_NEAR(lhs, dot(w, gw), 1e-4 * (1.0 + std::fabs(lhs))) << "<convT(x), y> vs <w, gw(x, y)>";
}

// With output_padding 0, ConvTranspose2d(C -> K) forward is Conv2d(K -> C)'s data gradient with the
// same weight tensor (C, K, R, S), the conv's input being the transposed conv's output P x Q.
TEST_P(ConvTranspose2d, ForwardEqualsConv2dBackwardData) {
  ConvTranspose2dShape t = convt_shape(GetParam());
  t.output_padding_h = t.output_padding_w = 0;
  Conv2dShape c;
  c.N = t.N, c.C = t.K, c.H = t.P(), c.W = t.Q(), c.K = t.C, c.R = t.R, c.S = t.S;
  c.stride_h = t.stride_h, c.stride_w = t.stride_w, c.pad_h = t.pad_h, c.pad_w = t.pad_w;
  ASSERT_EQ(c.P(), t.H);
  ASSERT_EQ(c.Q(), t.W);
  const auto x = random_vector(t.N * t.C * t.H * t.W, 41);
  const auto w = random_vector(t.C * t.K * t.R * t.S, 42);
  std::vector<float> y(static_cast<size_t>(t.N * t.K * t.P() * t.Q())), g(y.size());
  cpu::conv_transpose2d_forward(t, x.data(), w.data(), nullptr, y.data());
  cpu::conv2d_backward_data(c, x.data(), w.data(), g.data());
  EXPECT_TRUE(all_close(y.data(), g.data(), static_cast<int64_t>(y.size()), kTol,
                        "conv_transpose2d_forward vs conv2d_backward_data"));
}

std::vector<ConvCase> convt_cases() {
  // N, C, H, W, K, R, S, stride h/w, pad h/w, output_padding h/w
  return {
      {2, 3, 7, 5, 4, 3, 3, 2, 2, 1, 1, 0, 0},       // odd sizes, C != K
      {2, 3, 7, 5, 4, 3, 3, 2, 2, 1, 1, 1, 1},       // ... with output_padding 1
      {1, 1, 5, 5, 1, 1, 1, 1, 1, 0, 0, 0, 0},       // 1x1
      {1, 2, 4, 3, 3, 1, 1, 2, 2, 0, 0, 1, 0},       // 1x1 stride 2: output padding rows stay bias
      {2, 4, 4, 4, 3, 4, 4, 2, 2, 1, 1, 0, 0},       // DCGAN-style 4x4 s2 p1 (doubles the size)
      {3, 2, 5, 4, 3, 5, 3, 1, 1, 2, 1, 0, 0},       // non-square kernel 5x3
      {1, 3, 4, 5, 2, 3, 3, 3, 3, 1, 1, 2, 1},       // stride 3, output padding (2, 1)
      {2, 3, 3, 4, 2, 3, 5, 2, 3, 2, 1, 1, 2},       // stride (2, 3), padding (2, 1), op (1, 2)
      {1, 2, 3, 3, 3, 4, 4, 1, 1, 0, 0, 0, 0},       // stride 1, no padding: full correlation
      {2, 3, 4, 4, 2, 2, 2, 3, 3, 0, 0, 2, 2},       // stride > kernel: gaps stay bias
      {1, 2, 6, 5, 3, 3, 3, 2, 2, 2, 2, 1, 1},       // padding 2 crops more than it adds
      {2, 64, 7, 7, 32, 4, 4, 2, 2, 1, 1, 0, 0},     // conv VAE decoder 7 -> 14
      {2, 32, 14, 14, 1, 4, 4, 2, 2, 1, 1, 0, 0},    // conv VAE decoder 14 -> 28
      {4, 128, 16, 16, 64, 4, 4, 2, 2, 1, 1, 0, 0},  // DCGAN-64 generator layer: several groups
  };
}

INSTANTIATE_TEST_SUITE_P(Cpu, ConvTranspose2d, ::testing::ValuesIn(convt_cases()),
                         [](const auto& info) { return case_name(info.param, true); });

// ---- determinism and validation -----------------------------------------------------------------

// Restores OpenMP's thread count when a test ends, however it ends.
struct OmpThreads {
  int saved = omp_get_max_threads();
  ~OmpThreads() { omp_set_num_threads(saved); }
};

TEST(Determinism, ReductionsAreBitIdenticalAcrossRunsAndThreadCounts) {
  OmpThreads restore;
  const ConvCase cases[] = {{8, 16, 16, 16, 32, 3, 3, 1, 1, 1, 1},
                            {4, 64, 32, 32, 128, 4, 4, 2, 2, 1, 1}};
  for (const ConvCase& cc : cases) {
    const Conv2dShape s = conv_shape(cc);
    const ConvTranspose2dShape t = convt_shape(cc);
    const auto x = random_vector(s.N * s.C * s.H * s.W, 51);
    const auto gy = random_vector(s.N * s.K * s.P() * s.Q(), 52);
    const auto gyt = random_vector(t.N * t.K * t.P() * t.Q(), 53);
    std::vector<std::vector<float>> gw, gwt, gb, gm;
    for (int threads : {1, 2, 2, 1}) {
      omp_set_num_threads(threads);
      gw.emplace_back(static_cast<size_t>(s.K * s.C * s.R * s.S));
      cpu::conv2d_backward_weight(s, x.data(), gy.data(), gw.back().data());
      gwt.emplace_back(static_cast<size_t>(t.C * t.K * t.R * t.S));
      cpu::conv_transpose2d_backward_weight(t, x.data(), gyt.data(), gwt.back().data());
      gb.emplace_back(static_cast<size_t>(s.K));
      cpu::bias_backward(gy.data(), gb.back().data(), s.N, s.K, s.P() * s.Q());
      // a GEMM large enough to be split into tiles: x viewed as (N*C, H*W) times its transpose
      const int64_t rows = s.N * s.C, cols = s.H * s.W;
      gm.emplace_back(static_cast<size_t>(rows * rows));
      cpu::gemm(false, true, rows, rows, cols, 1.0f, x.data(), x.data(), 0.0f, gm.back().data());
    }
    for (size_t i = 1; i < gw.size(); ++i) {
      EXPECT_TRUE(bit_identical(gw[0], gw[i])) << case_name(cc, false) << " conv2d run " << i;
      EXPECT_TRUE(bit_identical(gwt[0], gwt[i])) << case_name(cc, false) << " convT run " << i;
      EXPECT_TRUE(bit_identical(gb[0], gb[i])) << case_name(cc, false) << " bias run " << i;
      EXPECT_TRUE(bit_identical(gm[0], gm[i])) << case_name(cc, false) << " gemm run " << i;
    }
  }
}

TEST(Validation, BadShapesThrowWithTheShape) {
  std::vector<float> buf(4096);
  Conv2dShape s;
  s.H = 2, s.W = 2, s.R = 3, s.S = 3;  // kernel larger than the unpadded image
  EXPECT_THROW(cpu::conv2d_forward(s, buf.data(), buf.data(), nullptr, buf.data()),
               std::invalid_argument);
  s.pad_h = s.pad_w = 1;  // now P = Q = 2
  EXPECT_NO_THROW(cpu::conv2d_forward(s, buf.data(), buf.data(), nullptr, buf.data()));
  s.pad_h = s.pad_w = 0, s.stride_h = s.stride_w = 2;  // (2 - 3) / 2 + 1 = 1 in C++, still invalid
  EXPECT_THROW(cpu::conv2d_backward_weight(s, buf.data(), buf.data(), buf.data()),
               std::invalid_argument);
  s.pad_h = s.pad_w = 1, s.stride_h = 0;
  EXPECT_THROW(cpu::conv2d_backward_data(s, buf.data(), buf.data(), buf.data()),
               std::invalid_argument);

  ConvTranspose2dShape t;
  t.H = t.W = 3, t.R = t.S = 3, t.stride_h = t.stride_w = 2,
  t.output_padding_h = 2;  // op >= stride
  try {
    cpu::conv_transpose2d_forward(t, buf.data(), buf.data(), nullptr, buf.data());
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("output_padding (2, 0)"), std::string::npos) << e.what();
  }
}

TEST(EmptyBatch, KernelsAcceptZeroImages) {
  Conv2dShape s;
  s.N = 0, s.C = 2, s.H = s.W = 5, s.K = 3, s.R = s.S = 3;
  std::vector<float> w(static_cast<size_t>(3 * 2 * 9), 1.0f), gw(w.size(), kNaN);
  cpu::conv2d_forward(s, nullptr, w.data(), nullptr, nullptr);
  cpu::conv2d_backward_data(s, nullptr, w.data(), nullptr);
  cpu::conv2d_backward_weight(s, nullptr, nullptr, gw.data());
  for (float v : gw) EXPECT_EQ(v, 0.0f);  // an empty sum
}

}  // namespace
