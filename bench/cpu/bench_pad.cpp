// bench_pad.cpp: zero padding at the shapes of the 128x128 GAN (Keras "same" padding), GB/s.
#include <benchmark/benchmark.h>

#include <vector>

#include "kernels/pad.h"

namespace {

void BM_Pad2dForward(benchmark::State& state) {
  // The generator's last layer: (N, 128, 128, 128) padded by (3, 4, 3, 4) for an 8x8 convolution.
  const ll::kernels::Pad2dShape s{state.range(0), 128, 128, 128, 3, 4, 3, 4};
  std::vector<float> x(static_cast<size_t>(s.N * s.C * s.H * s.W), 1.0f), y(static_cast<size_t>(s.N * s.C * s.P() * s.Q()));
  for (auto _ : state) {
    ll::kernels::cpu::pad2d_forward(s, x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>((x.size() + y.size()) * sizeof(float)));
}
BENCHMARK(BM_Pad2dForward)->Arg(2)->UseRealTime();

void BM_Pad2dBackward(benchmark::State& state) {
  const ll::kernels::Pad2dShape s{state.range(0), 128, 128, 128, 3, 4, 3, 4};
  std::vector<float> gy(static_cast<size_t>(s.N * s.C * s.P() * s.Q()), 1.0f), gx(static_cast<size_t>(s.N * s.C * s.H * s.W));
  for (auto _ : state) {
    ll::kernels::cpu::pad2d_backward(s, gy.data(), gx.data());
    benchmark::DoNotOptimize(gx.data());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>((gx.size() + gy.size()) * sizeof(float)));
}
BENCHMARK(BM_Pad2dBackward)->Arg(2)->UseRealTime();

}  // namespace
