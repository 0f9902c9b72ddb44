// reduce.cpp: CPU reference of the deterministic sums (kernels/reduce.h).
//
// Every sum here has one fixed order, that of deterministic_sum() in kernels/cpu/parallel.h:
// chunks of kSumChunk terms, each summed in float64 in index order, then the chunk sums added in
// index order. sum_dim's strided path walks the same chunks by hand, so
// sum_dim(x, y, 1, n, 1) == sum_all(x, n) bit for bit, and no result depends on the thread count.
#include "kernels/reduce.h"

#include <cstring>

#include "kernels/cpu/parallel.h"

namespace ll::kernels::cpu {

void sum_all(const float* x, int64_t n, float* out) {
  out[0] = static_cast<float>(
      deterministic_sum(n, [x](int64_t i) { return static_cast<double>(x[i]); }));
}

// x (outer, mid, inner) -> y (outer, inner).
void sum_dim(const float* x, float* y, int64_t outer, int64_t mid, int64_t inner) {
  if (inner == 1) {
    // Contiguous rows of `mid`: one deterministic_sum per row. Long rows parallelize inside
    // deterministic_sum; many short rows parallelize across rows.
    auto row_sum = [x, mid](int64_t o) {
      const float* row = x + o * mid;
      return static_cast<float>(
          deterministic_sum(mid, [row](int64_t m) { return static_cast<double>(row[m]); }));
    };
    if (mid >= kParallelGrain) {
      for (int64_t o = 0; o < outer; ++o) y[o] = row_sum(o);
    } else {
#pragma omp parallel for if (outer * mid >= kParallelGrain)
      for (int64_t o = 0; o < outer; ++o) y[o] = row_sum(o);
    }
    return;
  }
  // Strided sums: for each o, a tile of kTile adjacent outputs i accumulates whole rows
  // x[o, m, i0:i1] at a time (contiguous, vectorizable), in the chunk order of deterministic_sum.
  constexpr int64_t kTile = 128;
  const int64_t tiles = (inner + kTile - 1) / kTile;
#pragma omp parallel for if (outer * mid * inner >= kParallelGrain)
  for (int64_t item = 0; item < outer * tiles; ++item) {
    const int64_t o = item / tiles;
    const int64_t i0 = (item % tiles) * kTile;
    const int64_t width = i0 + kTile < inner ? kTile : inner - i0;
    double total[kTile], part[kTile];
    for (int64_t j = 0; j < width; ++j) total[j] = 0.0;
    for (int64_t m0 = 0; m0 < mid; m0 += kSumChunk) {
      const int64_t m1 = m0 + kSumChunk < mid ? m0 + kSumChunk : mid;
      for (int64_t j = 0; j < width; ++j) part[j] = 0.0;
      for (int64_t m = m0; m < m1; ++m) {
        const float* row = x + (o * mid + m) * inner + i0;
        for (int64_t j = 0; j < width; ++j) part[j] += static_cast<double>(row[j]);
      }
      for (int64_t j = 0; j < width; ++j) total[j] += part[j];
    }
    for (int64_t j = 0; j < width; ++j) y[o * inner + i0 + j] = static_cast<float>(total[j]);
  }
}

// gy (outer, inner) -> gx (outer, mid, inner): each row gx[o, m, :] is a copy of gy[o, :].
void broadcast_dim(const float* gy, float* gx, int64_t outer, int64_t mid, int64_t inner) {
  if (inner <= 0) return;
  const size_t bytes = static_cast<size_t>(inner) * sizeof(float);
#pragma omp parallel for if (outer * mid * inner >= kParallelGrain)
  for (int64_t row = 0; row < outer * mid; ++row) {
    std::memcpy(gx + row * inner, gy + (row / mid) * inner, bytes);
  }
}

}  // namespace ll::kernels::cpu
