// parallel.h: how the CPU kernels use threads without giving up determinism.
//
// Element-wise loops use `#pragma omp parallel for` directly: each output element is written by one
// thread, so the result cannot depend on scheduling. Reductions use deterministic_sum() below: the
// data is cut into fixed-size chunks (the cut depends only on n), each chunk is summed in float64 in
// index order, and the chunk sums are added in index order. The result is the same for any thread
// count and any timing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ll::kernels::cpu {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelGrain = 1 << 14;

constexpr int64_t kSumChunk = 4096;

// Returns sum_{i < n} term(i), summed as described above. `term` returns a double.
template <typename Term>
double deterministic_sum(int64_t n, Term term) {
  const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  if (chunks <= 1) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += term(i);
    return s;
  }
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kSumChunk;
    const int64_t end = begin + kSumChunk < n ? begin + kSumChunk : n;
    double s = 0.0;
    for (int64_t i = begin; i < end; ++i) s += term(i);
    partial[static_cast<size_t>(c)] = s;
  }
  double s = 0.0;
  for (double p : partial) s += p;
  return s;
}

// The same sum for terms that a vectorized loop computes a chunk at a time: fill(begin, end, out)
// writes the float terms of [begin, end) to out[0 .. end - begin). They are added in float64 in index
// order within the fixed chunks, so the result equals deterministic_sum over the same float terms.
template <typename Fill>
double deterministic_sum_chunks(int64_t n, Fill fill) {
  const int64_t chunks = (n + kSumChunk - 1) / kSumChunk;
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
  for (int64_t c = 0; c < chunks; ++c) {
    float terms[kSumChunk];
    const int64_t begin = c * kSumChunk;
    const int64_t end = begin + kSumChunk < n ? begin + kSumChunk : n;
    fill(begin, end, terms);
    double s = 0.0;
    for (int64_t i = 0; i < end - begin; ++i) s += static_cast<double>(terms[i]);
    partial[static_cast<size_t>(c)] = s;
  }
  double s = 0.0;
  for (double p : partial) s += p;
  return s;
}

}  // namespace ll::kernels::cpu
