// embedding.cpp: CPU reference of the table lookup (kernels/embedding.h), torch.nn.Embedding
// without padding_idx / max_norm. table (num, dim), idx (N), y and gy (N, dim).
#include "kernels/embedding.h"

#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/cpu/parallel.h"

namespace ll::kernels::cpu {

namespace {
// An index outside [0, num) would read or write outside the table; refuse it before any thread
// starts (an exception cannot leave an OpenMP region).
void check_indices(const int32_t* idx, int64_t N, int64_t num) {
  for (int64_t n = 0; n < N; ++n) {
    if (idx[n] < 0 || idx[n] >= num) {
      throw std::out_of_range("embedding: index " + std::to_string(idx[n]) + " at position " +
                              std::to_string(n) + " is outside the table of " +
                              std::to_string(num) + " rows");
    }
  }
}
}  // namespace

void embedding_forward(const float* table, const int32_t* idx, float* y, int64_t N, int64_t num,
                       int64_t dim) {
  check_indices(idx, N, num);
  if (dim <= 0) return;
  const size_t bytes = static_cast<size_t>(dim) * sizeof(float);
#pragma omp parallel for if (N * dim >= kParallelGrain)
  for (int64_t n = 0; n < N; ++n) std::memcpy(y + n * dim, table + idx[n] * dim, bytes);
}

// Several n may share a row, so the accumulation order matters for the float result. Every
// gtable element receives its terms in increasing n, as in the sequential loop; the threads split
// the dim columns, never the n, so the result is bit-identical for any thread count.
void embedding_backward(const float* gy, const int32_t* idx, float* gtable, int64_t N, int64_t num,
                        int64_t dim) {
  check_indices(idx, N, num);
  if (dim <= 0) return;
  std::memset(gtable, 0, static_cast<size_t>(num * dim) * sizeof(float));
  constexpr int64_t kCols = 64;  // a column block: 256 bytes of each row
  const int64_t blocks = (dim + kCols - 1) / kCols;
#pragma omp parallel for if (blocks > 1 && N * dim >= kParallelGrain)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kCols, j1 = j0 + kCols < dim ? j0 + kCols : dim;
    for (int64_t n = 0; n < N; ++n) {
      const float* src = gy + n * dim;
      float* dst = gtable + static_cast<int64_t>(idx[n]) * dim;
      for (int64_t j = j0; j < j1; ++j) dst[j] += src[j];
    }
  }
}

}  // namespace ll::kernels::cpu
