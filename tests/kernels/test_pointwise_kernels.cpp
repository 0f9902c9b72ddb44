// test_pointwise_kernels.cpp: the CPU activations, element-wise ops, reductions, embedding and
// layout copies against naive float64 code written from the math (not from the kernels).
//
// Sizes: 1, odd sizes, and 100003 > kParallelGrain so that the OpenMP paths run.
// Tolerances: element-wise ops whose float result is one or two roundings of the exact value are
// checked at atol 1e-6 / rtol 1e-6; sums (rounded once from float64) at rtol 1e-6.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/activation.h"
#include "kernels/cpu/parallel.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/reduce.h"
#include "tests/common/compare.h"

namespace ll::kernels {
namespace {

using test::all_close;
using test::random_vector;
using test::Tolerance;

const std::vector<int64_t> kSizes = {1, 7, 1000, 100003};
constexpr Tolerance kTight{1e-6, 1e-6};

std::string name(const char* what, int64_t n) {
  return std::string(what) + " n=" + std::to_string(n);
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// ---- activations ----------------------------------------------------------------------------

double ref_act(Activation a, double slope, double x) {
  switch (a) {
    case Activation::ReLU:
      return x > 0 ? x : 0.0;
    case Activation::LeakyReLU:
      return x > 0 ? x : slope * x;
    case Activation::Tanh:
      return std::tanh(x);
    case Activation::Sigmoid:
      return 1.0 / (1.0 + std::exp(-x));
  }
  return 0.0;
}

// d act / dx, from x itself (the kernels use y for tanh and sigmoid). At x == 0, PyTorch takes
// relu'(0) = 0 and leaky_relu'(0) = slope.
double ref_act_grad(Activation a, double slope, double x) {
  switch (a) {
    case Activation::ReLU:
      return x > 0 ? 1.0 : 0.0;
    case Activation::LeakyReLU:
      return x > 0 ? 1.0 : slope;
    case Activation::Tanh:
      return 1.0 - std::tanh(x) * std::tanh(x);
    case Activation::Sigmoid: {
      const double s = 1.0 / (1.0 + std::exp(-x));
      return s * (1.0 - s);
    }
  }
  return 0.0;
}

TEST(Activation, ForwardAndBackwardMatchFloat64) {
  const float slope = 0.2f;
  for (Activation a :
       {Activation::ReLU, Activation::LeakyReLU, Activation::Tanh, Activation::Sigmoid}) {
    for (int64_t n : kSizes) {
      std::vector<float> x = random_vector(n, 11 + static_cast<uint32_t>(n), -6.0f, 6.0f);
      if (n > 3) x[1] = 0.0f, x[2] = -0.0f;  // the kink
      const std::vector<float> gy = random_vector(n, 12, -1.0f, 1.0f);
      std::vector<float> y(n), gx(n);
      cpu::activation_forward(a, slope, x.data(), y.data(), n);
      // ReLU/LeakyReLU read x; Tanh/Sigmoid read y. Pass nullptr for the other to check the
      // contract.
      const bool from_y = a == Activation::Tanh || a == Activation::Sigmoid;
      cpu::activation_backward(a, slope, from_y ? nullptr : x.data(), from_y ? y.data() : nullptr,
                               gy.data(), gx.data(), n);
      std::vector<double> ry(n), rgx(n);
      for (int64_t i = 0; i < n; ++i) {
        ry[i] = ref_act(a, slope, x[i]);
        rgx[i] = ref_act_grad(a, slope, x[i]) * gy[i];
      }
      const std::string what =
          name("activation", n) + " kind=" + std::to_string(static_cast<int>(a));
      EXPECT_TRUE(all_close(y, ry, kTight, "forward " + what));
      // tanh'/sigmoid' from the float y: the rounding of y (6e-8 relative) carries into 1 - y^2.
      EXPECT_TRUE(all_close(gx, rgx, {2e-6, 1e-5}, "backward " + what));
    }
  }
}

TEST(Activation, KinkAndSaturation) {
  const float x[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 100.0f, -100.0f};
  const float gy[] = {1, 1, 1, 1, 1, 1};
  float y[6], gx[6];
  cpu::activation_backward(Activation::ReLU, 0.0f, x, nullptr, gy, gx, 6);
  EXPECT_EQ(gx[0], 0.0f);
  EXPECT_EQ(gx[1], 0.0f);
  EXPECT_EQ(gx[2], 1.0f);
  cpu::activation_backward(Activation::LeakyReLU, 0.2f, x, nullptr, gy, gx, 6);
  EXPECT_EQ(gx[0], 0.2f);
  EXPECT_EQ(gx[3], 0.2f);
  // The stable sigmoid neither overflows nor produces NaN at large |x|.
  cpu::activation_forward(Activation::Sigmoid, 0.0f, x, y, 6);
  EXPECT_EQ(y[4], 1.0f);
  EXPECT_GE(y[5], 0.0f);
  EXPECT_LT(y[5], 1e-40f);
  cpu::activation_forward(Activation::Tanh, 0.0f, x, y, 6);
  EXPECT_EQ(y[4], 1.0f);
  EXPECT_EQ(y[5], -1.0f);
}

// ---- element-wise ---------------------------------------------------------------------------

TEST(Elementwise, MatchFloat64) {
  for (int64_t n : kSizes) {
    const std::vector<float> a = random_vector(n, 21, -3.0f, 3.0f);
    const std::vector<float> b = random_vector(n, 22, -3.0f, 3.0f);
    const std::vector<float> pos = random_vector(n, 23, 1e-3f, 10.0f);
    std::vector<float> y(n);
    std::vector<double> r(n);
    auto check = [&](const char* what, auto ref, Tolerance tol = kTight) {
      for (int64_t i = 0; i < n; ++i) r[i] = ref(i);
      EXPECT_TRUE(all_close(y, r, tol, name(what, n)));
    };
    cpu::fill(y.data(), 2.5f, n);
    check("fill", [&](int64_t) { return 2.5; });
    cpu::copy(a.data(), y.data(), n);
    check("copy", [&](int64_t i) { return double(a[i]); }, {0, 0});
    cpu::add(a.data(), b.data(), y.data(), n);
    check("add", [&](int64_t i) { return double(a[i]) + b[i]; });
    cpu::sub(a.data(), b.data(), y.data(), n);
    check("sub", [&](int64_t i) { return double(a[i]) - b[i]; });
    cpu::mul(a.data(), b.data(), y.data(), n);
    check("mul", [&](int64_t i) { return double(a[i]) * b[i]; });
    cpu::scale(a.data(), -0.75f, y.data(), n);
    check("scale", [&](int64_t i) { return -0.75 * a[i]; });
    cpu::add_scalar(a.data(), 1.25f, y.data(), n);
    check("add_scalar", [&](int64_t i) { return double(a[i]) + 1.25; });
    y = b;
    cpu::axpy(0.5f, a.data(), y.data(), n);
    check("axpy", [&](int64_t i) { return double(b[i]) + 0.5 * a[i]; });
    cpu::exp(a.data(), y.data(), n);
    check("exp", [&](int64_t i) { return std::exp(double(a[i])); }, {0, 1e-6});
    cpu::log(pos.data(), y.data(), n);
    check("log", [&](int64_t i) { return std::log(double(pos[i])); });
    // In place: the engine accumulates gradients with add(g, dg, g).
    y = a;
    cpu::add(y.data(), b.data(), y.data(), n);
    check("add in place", [&](int64_t i) { return double(a[i]) + b[i]; });
  }
}

TEST(Elementwise, CopyRowsConcatenatesAndNarrows) {
  // Concatenate a (outer, 3) and b (outer, 5) along dim 1 into c (outer, 8), then narrow back.
  for (int64_t outer : {1, 5, 5000}) {
    const std::vector<float> a = random_vector(outer * 3, 31), b = random_vector(outer * 5, 32);
    std::vector<float> c(outer * 8, -99.0f);
    cpu::copy_rows(a.data(), 3, 0, c.data(), 8, 0, outer, 3);
    cpu::copy_rows(b.data(), 5, 0, c.data(), 8, 3, outer, 5);
    std::vector<double> rc(outer * 8);
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t j = 0; j < 3; ++j) rc[o * 8 + j] = a[o * 3 + j];
      for (int64_t j = 0; j < 5; ++j) rc[o * 8 + 3 + j] = b[o * 5 + j];
    }
    EXPECT_TRUE(all_close(c, rc, {0, 0}, name("concat", outer)));
    std::vector<float> back(outer * 5);
    cpu::copy_rows(c.data(), 8, 3, back.data(), 5, 0, outer, 5);
    EXPECT_TRUE(bit_equal(back, b)) << "narrow outer=" << outer;
  }
}

TEST(Elementwise, Transpose2d) {
  const int64_t shapes[][2] = {{1, 1}, {1, 9}, {9, 1}, {3, 5}, {33, 65}, {300, 301}};
  for (const auto& s : shapes) {
    const int64_t rows = s[0], cols = s[1];
    const std::vector<float> x = random_vector(rows * cols, 41);
    std::vector<float> y(rows * cols);
    cpu::transpose2d(x.data(), y.data(), rows, cols);
    std::vector<double> r(rows * cols);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) r[j * rows + i] = x[i * cols + j];
    EXPECT_TRUE(
        all_close(y, r, {0, 0}, "transpose " + std::to_string(rows) + "x" + std::to_string(cols)));
  }
}

// ---- reductions -----------------------------------------------------------------------------

TEST(Reduce, SumAllMatchesFloat64) {
  for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{4096}, int64_t{4097},
                    int64_t{100003}, int64_t{1000000}}) {
    const std::vector<float> x = random_vector(n, 51, -1.0f, 1.0f);
    double r = 0.0;
    for (float v : x) r += v;
    float got = -1.0f;
    cpu::sum_all(x.data(), n, &got);
    EXPECT_TRUE(all_close(&got, &r, 1, {1e-6, 1e-6}, name("sum_all", n)));
  }
}

TEST(Reduce, SumDimAndBroadcastDim) {
  const int64_t shapes[][3] = {{1, 1, 1},     {3, 5, 7},     {1, 100003, 1}, {5, 3, 1},
                               {7, 1, 300},   {2, 50000, 3}, {4, 4097, 130}, {128, 400, 1},
                               {1, 128, 400}, {64, 3, 256}};
  for (const auto& s : shapes) {
    const int64_t outer = s[0], mid = s[1], inner = s[2];
    const std::string what =
        "(" + std::to_string(outer) + "," + std::to_string(mid) + "," + std::to_string(inner) + ")";
    const std::vector<float> x = random_vector(outer * mid * inner, 61);
    std::vector<float> y(outer * inner, -99.0f);
    cpu::sum_dim(x.data(), y.data(), outer, mid, inner);
    std::vector<double> r(outer * inner, 0.0);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t m = 0; m < mid; ++m)
        for (int64_t i = 0; i < inner; ++i) r[o * inner + i] += x[(o * mid + m) * inner + i];
    EXPECT_TRUE(all_close(y, r, {1e-6, 1e-6}, "sum_dim " + what));

    const std::vector<float> gy = random_vector(outer * inner, 62);
    std::vector<float> gx(outer * mid * inner, -99.0f);
    cpu::broadcast_dim(gy.data(), gx.data(), outer, mid, inner);
    std::vector<double> rgx(outer * mid * inner);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t m = 0; m < mid; ++m)
        for (int64_t i = 0; i < inner; ++i) rgx[(o * mid + m) * inner + i] = gy[o * inner + i];
    EXPECT_TRUE(all_close(gx, rgx, {0, 0}, "broadcast_dim " + what));
  }
}

// The strided and contiguous paths of sum_dim and sum_all share one summation order.
TEST(Reduce, SumDimAgreesBitwiseWithSumAll) {
  const int64_t n = 100003;
  const std::vector<float> x = random_vector(n, 71);
  float all = 0.0f, row = 0.0f;
  cpu::sum_all(x.data(), n, &all);
  cpu::sum_dim(x.data(), &row, 1, n, 1);
  EXPECT_EQ(std::memcmp(&all, &row, sizeof(float)), 0);
  // A column of a (n, 2) matrix through the strided path equals the sum of the column alone.
  std::vector<float> two(2 * n), col(n), cols(2);
  for (int64_t i = 0; i < n; ++i) two[2 * i] = x[i], two[2 * i + 1] = 1.0f, col[i] = x[i];
  cpu::sum_dim(two.data(), cols.data(), 1, n, 2);
  EXPECT_EQ(std::memcmp(&all, &cols[0], sizeof(float)), 0);
  EXPECT_EQ(cols[1], static_cast<float>(n));
}

TEST(Reduce, DeterministicAcrossThreadCounts) {
  const int64_t n = 1000000;
  // Values with a wide range of magnitudes, so that any change of order would change the bits.
  std::vector<float> x = random_vector(n, 81, -1.0f, 1.0f);
  for (int64_t i = 0; i < n; i += 3) x[i] *= 1e4f;
  const int saved = omp_get_max_threads();
  float s1 = 0.0f, s2 = 0.0f;
  std::vector<float> d1(1000), d2(1000), g1(50 * 64), g2(50 * 64);
  const std::vector<int32_t> idx = [] {
    std::vector<int32_t> v(20000);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<int32_t>((i * 7919) % 50);
    return v;
  }();
  const std::vector<float> gy = random_vector(20000 * 64, 82);

  omp_set_num_threads(1);
  cpu::sum_all(x.data(), n, &s1);
  cpu::sum_dim(x.data(), d1.data(), 1, n / 1000, 1000);
  cpu::embedding_backward(gy.data(), idx.data(), g1.data(), 20000, 50, 64);
  omp_set_num_threads(2);
  cpu::sum_all(x.data(), n, &s2);
  cpu::sum_dim(x.data(), d2.data(), 1, n / 1000, 1000);
  cpu::embedding_backward(gy.data(), idx.data(), g2.data(), 20000, 50, 64);
  omp_set_num_threads(saved);

  EXPECT_EQ(std::memcmp(&s1, &s2, sizeof(float)), 0) << s1 << " vs " << s2;
  EXPECT_TRUE(bit_equal(d1, d2));
  EXPECT_TRUE(bit_equal(g1, g2));
}

// ---- embedding ------------------------------------------------------------------------------

TEST(Embedding, ForwardAndBackward) {
  struct Case {
    int64_t N, num, dim;
  };
  // The last case has N * dim > kParallelGrain and several column blocks.
  for (const Case c : {Case{1, 1, 1}, Case{7, 3, 5}, Case{128, 10, 10}, Case{3000, 50, 130}}) {
    const std::string what = "N=" + std::to_string(c.N) + " num=" + std::to_string(c.num) +
                             " dim=" + std::to_string(c.dim);
    const std::vector<float> table = random_vector(c.num * c.dim, 91);
    std::vector<int32_t> idx(c.N);
    for (int64_t n = 0; n < c.N; ++n) idx[n] = static_cast<int32_t>((n * 31 + 7) % c.num);
    std::vector<float> y(c.N * c.dim);
    cpu::embedding_forward(table.data(), idx.data(), y.data(), c.N, c.num, c.dim);
    std::vector<double> ry(c.N * c.dim);
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t j = 0; j < c.dim; ++j) ry[n * c.dim + j] = table[idx[n] * c.dim + j];
    EXPECT_TRUE(all_close(y, ry, {0, 0}, "embedding forward " + what));

    const std::vector<float> gy = random_vector(c.N * c.dim, 92);
    std::vector<float> gt(c.num * c.dim, 123.0f);  // overwritten, not accumulated
    cpu::embedding_backward(gy.data(), idx.data(), gt.data(), c.N, c.num, c.dim);
    std::vector<double> rgt(c.num * c.dim, 0.0);
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t j = 0; j < c.dim; ++j) rgt[idx[n] * c.dim + j] += gy[n * c.dim + j];
    // float accumulation of up to N / num terms in order: rounding grows with the count.
    EXPECT_TRUE(all_close(gt, rgt, {1e-5, 1e-5}, "embedding backward " + what));
  }
}

TEST(Embedding, RejectsOutOfRangeIndex) {
  const std::vector<float> table(6, 1.0f);
  std::vector<float> y(4), gt(6);
  const int32_t bad_hi[] = {0, 3}, bad_lo[] = {-1, 0};
  EXPECT_THROW(cpu::embedding_forward(table.data(), bad_hi, y.data(), 2, 3, 2), std::out_of_range);
  EXPECT_THROW(cpu::embedding_backward(y.data(), bad_lo, gt.data(), 2, 3, 2), std::out_of_range);
}

}  // namespace
}  // namespace ll::kernels
