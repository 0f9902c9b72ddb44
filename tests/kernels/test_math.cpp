// test_math.cpp: the branch-free exp and log1p of kernels/common/formulas.h against float64, in
// units in the last place (ulp) of the float result.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>

#include "kernels/common/formulas.h"

namespace ll {
namespace {

// Distance in ulps between a float and the float64 truth.
double ulp_error(float got, double truth) {
  const float t = static_cast<float>(truth);
  const float next = std::nextafter(t, INFINITY);
  const double ulp = static_cast<double>(next) - static_cast<double>(t);
  return std::fabs(static_cast<double>(got) - truth) / ulp;
}

TEST(FastMath, ExpNonpositiveWithinTwoUlp) {
  double worst = 0.0;
  float worst_x = 0.0f;
  // Every 61st float between -87.3 and 0 (about 17 million values), and the end points.
  const uint32_t lo = 0x80000000u, hi = 0xC2AEAC4Fu;  // -0.0 .. about -87.33
  for (uint64_t b = lo; b <= hi; b += 61) {
    float x;
    const uint32_t bits = static_cast<uint32_t>(b);
    std::memcpy(&x, &bits, 4);
    const double e = ulp_error(f::exp_nonpositive(x), std::exp(static_cast<double>(x)));
    if (e > worst) {
      worst = e;
      worst_x = x;
    }
  }
  EXPECT_LE(worst, 2.0) << "at x = " << worst_x;
  EXPECT_EQ(f::exp_nonpositive(0.0f), 1.0f);
  EXPECT_EQ(f::exp_nonpositive(-0.0f), 1.0f);
  // Far below the range: a tiny positive value, never NaN or a negative.
  for (float x : {-88.0f, -100.0f, -1e30f, -INFINITY}) {
    const float v = f::exp_nonpositive(x);
    EXPECT_TRUE(v >= 0.0f && v <= 1.2e-38f) << x << " -> " << v;
  }
  std::cout << "  exp_nonpositive: worst error " << worst << " ulp at x = " << worst_x << "\n";
}

TEST(FastMath, Log1pUnitWithinTwoUlp) {
  double worst = 0.0;
  float worst_e = 0.0f;
  // Every 13th float in [2^-30, 1] (about 19 million: denser near 0, where log1p matters), and 0.
  const uint32_t lo = 0x30800000u, hi = 0x3f800000u;  // 2^-30 .. 1
  for (uint64_t b = lo; b <= hi; b += 13) {
    float e;
    const uint32_t bits = static_cast<uint32_t>(b);
    std::memcpy(&e, &bits, 4);
    const double err = ulp_error(f::log1p_unit(e), std::log1p(static_cast<double>(e)));
    if (err > worst) {
      worst = err;
      worst_e = e;
    }
  }
  EXPECT_LE(worst, 2.0) << "at e = " << worst_e;
  EXPECT_EQ(f::log1p_unit(0.0f), 0.0f);
  EXPECT_NEAR(f::log1p_unit(1.0f), std::log(2.0), 1e-7);
  std::cout << "  log1p_unit: worst error " << worst << " ulp at e = " << worst_e << "\n";
}

TEST(FastMath, BceWithLogitsStaysAccurateEverywhere) {
  // The loss built from them against float64, including saturated logits.
  double worst_rel = 0.0;
  for (float x = -100.0f; x <= 100.0f; x += 0.0137f) {
    for (float t : {0.0f, 0.3f, 1.0f}) {
      const double xd = x, td = t;
      const double truth = std::max(xd, 0.0) - xd * td + std::log1p(std::exp(-std::fabs(xd)));
      float g;
      const float l = f::bce_with_logits_and_grad(x, t, g);
      EXPECT_EQ(l, f::bce_with_logits(x, t));
      worst_rel = std::max(worst_rel, std::fabs(l - truth) / std::max(truth, 1e-30));
      const double gt = 1.0 / (1.0 + std::exp(-xd)) - td;
      EXPECT_NEAR(g, gt, 1e-6) << "x " << x << " t " << t;
    }
  }
  // Relative to the loss: a few float roundings (the subtraction max(x,0) - x t cancels for t = 1).
  EXPECT_LT(worst_rel, 2e-6);
}

}  // namespace
}  // namespace ll
