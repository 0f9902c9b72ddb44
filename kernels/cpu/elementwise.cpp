// elementwise.cpp: CPU reference of the small arithmetic between ops (kernels/elementwise.h).
// Every output element is written by one thread, so the parallel loops are deterministic.
#include "kernels/elementwise.h"

#include <cmath>
#include <cstring>

#include "kernels/cpu/parallel.h"

namespace ll::kernels::cpu {

void fill(float* y, float value, int64_t n) {
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

void copy(const float* x, float* y, int64_t n) {
  if (n <= 0 || x == y) return;
  std::memcpy(y, x, static_cast<size_t>(n) * sizeof(float));
}

// The binary loops allow y to alias a or b (in-place accumulation: add(g, dg, g, n)); each
// element is read before it is written by the same iteration.
void add(const float* a, const float* b, float* y, int64_t n) {
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

void sub(const float* a, const float* b, float* y, int64_t n) {
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] - b[i];
}

void mul(const float* a, const float* b, float* y, int64_t n) {
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] * b[i];
}

void scale(const float* x, float alpha, float* y, int64_t n) {
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = alpha * x[i];
}

void add_scalar(const float* x, float c, float* y, int64_t n) {
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] + c;
}

void axpy(float alpha, const float* x, float* y, int64_t n) {
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void exp(const float* x, float* y, int64_t n) {
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = expf(x[i]);
}

void log(const float* x, float* y, int64_t n) {
#pragma omp parallel for if (n >= kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = logf(x[i]);
}

void copy_rows(const float* src, int64_t src_stride, int64_t src_offset, float* dst,
               int64_t dst_stride, int64_t dst_offset, int64_t outer, int64_t len) {
  if (len <= 0) return;
  const size_t bytes = static_cast<size_t>(len) * sizeof(float);
#pragma omp parallel for if (outer * len >= kParallelGrain)
  for (int64_t o = 0; o < outer; ++o) {
    std::memcpy(dst + o * dst_stride + dst_offset, src + o * src_stride + src_offset, bytes);
  }
}

// x (rows, cols) -> y (cols, rows), in square tiles so that both the reads of x and the writes of
// y stay within a few cache lines per tile row (a plain double loop strides one of them by a full
// row per element).
void transpose2d(const float* x, float* y, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 32;
  const int64_t row_tiles = (rows + kTile - 1) / kTile;
  const int64_t col_tiles = (cols + kTile - 1) / kTile;
#pragma omp parallel for collapse(2) if (rows * cols >= kParallelGrain)
  for (int64_t rt = 0; rt < row_tiles; ++rt) {
    for (int64_t ct = 0; ct < col_tiles; ++ct) {
      const int64_t r0 = rt * kTile, r1 = r0 + kTile < rows ? r0 + kTile : rows;
      const int64_t c0 = ct * kTile, c1 = c0 + kTile < cols ? c0 + kTile : cols;
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) y[c * rows + r] = x[r * cols + c];
      }
    }
  }
}

}  // namespace ll::kernels::cpu
