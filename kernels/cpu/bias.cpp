// bias.cpp: per-channel bias over (N, C, inner) and its gradient (see kernels/bias.h).
#include "kernels/bias.h"

#include <vector>

#include "kernels/cpu/parallel.h"

namespace ll::kernels::cpu {

void bias_add(float* y, const float* b, int64_t N, int64_t C, int64_t inner) {
  if (inner == 1) {
    // Linear: y is (N, C); add b to each row (a contiguous, vectorizable loop).
#pragma omp parallel for schedule(static) if (N * C >= kParallelGrain)
    for (int64_t n = 0; n < N; ++n) {
      float* yr = y + n * C;
      for (int64_t c = 0; c < C; ++c) yr[c] += b[c];
    }
    return;
  }
  // y is (N, C, inner); each (n, c) row is written by one thread.
  const int64_t rows = N * C;
#pragma omp parallel for schedule(static) if (rows * inner >= kParallelGrain)
  for (int64_t row = 0; row < rows; ++row) {
    const float bc = b[row % C];
    float* yr = y + row * inner;
    for (int64_t i = 0; i < inner; ++i) yr[i] += bc;
  }
}

void bias_backward(const float* gy, float* gb, int64_t N, int64_t C, int64_t inner) {
  if (inner == 1 && N <= kSumChunk) {
    // Linear: gy is (N, C). Walk it row by row (contiguous), adding each row into float64 column
    // sums: per channel the same order over n as the general path's single chunk, so the same
    // result, without strided reads.
    std::vector<double> acc(static_cast<size_t>(C), 0.0);
    for (int64_t n = 0; n < N; ++n) {
      const float* row = gy + n * C;
      for (int64_t c = 0; c < C; ++c) acc[static_cast<size_t>(c)] += static_cast<double>(row[c]);
    }
    for (int64_t c = 0; c < C; ++c) gb[c] = static_cast<float>(acc[static_cast<size_t>(c)]);
    return;
  }
  // gy is (N, C, inner). Each channel is summed by one thread, in float64, over n in order (each
  // row's contiguous inner values summed in order first), so the result does not depend on the
  // thread count. deterministic_sum's chunks run over n; N never reaches its parallel threshold,
  // so the channels are the parallel dimension.
#pragma omp parallel for schedule(static) if (N * C * inner >= kParallelGrain)
  for (int64_t c = 0; c < C; ++c) {
    const double s = deterministic_sum(N, [&](int64_t n) {
      const float* row = gy + (n * C + c) * inner;
      double r = 0.0;
      for (int64_t i = 0; i < inner; ++i) r += static_cast<double>(row[i]);
      return r;
    });
    gb[c] = static_cast<float>(s);
  }
}

}  // namespace ll::kernels::cpu
