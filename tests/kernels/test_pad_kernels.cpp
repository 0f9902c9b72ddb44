// test_pad_kernels.cpp: zero padding against its definition, and its adjoint.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/pad.h"
#include "tests/common/compare.h"

namespace ll::kernels {
namespace {

TEST(Pad2d, ForwardAndBackwardMatchTheDefinition) {
  for (const Pad2dShape& s : {Pad2dShape{2, 3, 4, 5, 0, 1, 0, 1}, Pad2dShape{1, 1, 3, 3, 3, 4, 3, 4},
                              Pad2dShape{1, 2, 1, 7, 2, 0, 0, 5}, Pad2dShape{3, 1, 5, 2, 0, 0, 0, 0}}) {
    const int64_t P = s.P(), Q = s.Q();
    const std::vector<float> x = test::random_vector(s.N * s.C * s.H * s.W, 11);
    std::vector<float> y(static_cast<size_t>(s.N * s.C * P * Q), -7.0f);  // overwritten everywhere
    cpu::pad2d_forward(s, x.data(), y.data());
    std::vector<double> ref(y.size(), 0.0);
    for (int64_t pl = 0; pl < s.N * s.C; ++pl)
      for (int64_t h = 0; h < s.H; ++h)
        for (int64_t w = 0; w < s.W; ++w)
          ref[static_cast<size_t>(pl * P * Q + (h + s.top) * Q + w + s.left)] = x[static_cast<size_t>(pl * s.H * s.W + h * s.W + w)];
    EXPECT_TRUE(test::all_close(y.data(), ref.data(), static_cast<int64_t>(y.size()), {0, 0}, "pad2d forward"));
    // Adjoint: <pad(x), g> == <x, pad^T(g)>.
    const std::vector<float> g = test::random_vector(static_cast<int64_t>(y.size()), 12);
    std::vector<float> gx(x.size(), -7.0f);
    cpu::pad2d_backward(s, g.data(), gx.data());
    double lhs = 0, rhs = 0;
    for (size_t i = 0; i < y.size(); ++i) lhs += static_cast<double>(y[i]) * g[i];
    for (size_t i = 0; i < x.size(); ++i) rhs += static_cast<double>(x[i]) * gx[i];
    EXPECT_NEAR(lhs, rhs, 1e-5 * (1 + std::abs(lhs)));
  }
}

}  // namespace
}  // namespace ll::kernels
