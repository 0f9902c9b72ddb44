// pad.cpp: zero padding of (N, C, H, W) and its adjoint (kernels/pad.h).
#include "kernels/pad.h"

#include <algorithm>

#include "kernels/cpu/parallel.h"

namespace ll::kernels::cpu {

void pad2d_forward(const Pad2dShape& s, const float* x, float* y) {
  const int64_t planes = s.N * s.C, P = s.P(), Q = s.Q();
#pragma omp parallel for schedule(static) if (planes * P * Q >= kParallelGrain)
  for (int64_t pl = 0; pl < planes; ++pl) {
    float* yp = y + pl * P * Q;
    const float* xp = x + pl * s.H * s.W;
    std::fill(yp, yp + s.top * Q, 0.0f);
    for (int64_t h = 0; h < s.H; ++h) {
      float* row = yp + (s.top + h) * Q;
      std::fill(row, row + s.left, 0.0f);
      std::copy(xp + h * s.W, xp + (h + 1) * s.W, row + s.left);
      std::fill(row + s.left + s.W, row + Q, 0.0f);
    }
    std::fill(yp + (s.top + s.H) * Q, yp + P * Q, 0.0f);
  }
}

void pad2d_backward(const Pad2dShape& s, const float* gy, float* gx) {
  const int64_t planes = s.N * s.C, P = s.P(), Q = s.Q();
#pragma omp parallel for schedule(static) if (planes * s.H * s.W >= kParallelGrain)
  for (int64_t pl = 0; pl < planes; ++pl) {
    const float* gp = gy + pl * P * Q;
    float* xp = gx + pl * s.H * s.W;
    for (int64_t h = 0; h < s.H; ++h) {
      const float* row = gp + (s.top + h) * Q + s.left;
      std::copy(row, row + s.W, xp + h * s.W);
    }
  }
}

}  // namespace ll::kernels::cpu
