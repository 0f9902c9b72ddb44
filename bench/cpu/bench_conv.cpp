// bench_conv.cpp: CPU GEMM, conv2d and conv_transpose2d at the shapes of our models.
//
//   ./build/bench/bench_kernels_cpu --benchmark_filter='Gemm|Conv'
//
// items/s counts images (rows for GEMM); FLOP/s counts 2 FLOPs per multiply-add:
// 2 N K C R S P Q for a conv with output P x Q, and for a transposed conv the same count of its
// adjoint conv, 2 N C K R S H W with input H x W (every input pixel meets every kernel tap once).
// Times are wall-clock (UseRealTime): the CPU timer would not see the OpenMP worker threads.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/conv2d.h"
#include "kernels/conv_transpose2d.h"
#include "kernels/gemm.h"

namespace {

using ll::kernels::Conv2dShape;
using ll::kernels::ConvTranspose2dShape;
namespace cpu = ll::kernels::cpu;

std::vector<float> random_floats(int64_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(gen);
  return v;
}

void report(benchmark::State& state, int64_t items, double flops) {
  const double it = static_cast<double>(state.iterations());
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * items);
  state.counters["FLOP/s"] = benchmark::Counter(flops * it, benchmark::Counter::kIsRate);
}

// ---- GEMM: a Linear layer's forward, y (M, N) = x (M, K) W^T with W stored (N, K) ---------------

void BM_Gemm(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const auto a = random_floats(M * K, 1), b = random_floats(N * K, 2);
  std::vector<float> c(static_cast<size_t>(M * N));
  for (auto _ : state) {
    cpu::gemm(false, true, M, N, K, 1.0f, a.data(), b.data(), 0.0f, c.data());
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  report(state, M, 2.0 * M * N * K);
}
BENCHMARK(BM_Gemm)->Args({128, 400, 784})->Args({64, 1024, 1024})->UseRealTime();

// ---- conv2d -------------------------------------------------------------------------------------

Conv2dShape conv(int64_t N, int64_t C, int64_t H, int64_t K, int64_t R, int64_t stride,
                 int64_t pad) {
  Conv2dShape s;
  s.N = N, s.C = C, s.H = H, s.W = H, s.K = K, s.R = R, s.S = R;
  s.stride_h = s.stride_w = stride, s.pad_h = s.pad_w = pad;
  return s;
}

double conv_flops(const Conv2dShape& s) {
  return 2.0 * s.N * s.K * s.C * s.R * s.S * s.P() * s.Q();
}

const Conv2dShape kVae1 = conv(64, 1, 28, 32, 4, 2, 1);      // 28x28 VAE encoder: 1 -> 32, 28 -> 14
const Conv2dShape kVae2 = conv(64, 32, 14, 64, 4, 2, 1);     // 32 -> 64, 14 -> 7
const Conv2dShape kDcgan = conv(16, 64, 32, 128, 4, 2, 1);   // DCGAN-64 discriminator: 32 -> 16
const Conv2dShape kSame3x3 = conv(16, 64, 32, 64, 3, 1, 1);  // a 3x3 same-size layer, for scale
const Conv2dShape kD28a = conv(128, 1, 28, 64, 4, 2, 1);     // DCGAN-28 discriminator: 28 -> 14
const Conv2dShape kD28b = conv(128, 64, 14, 128, 4, 2, 1);   // 64 -> 128, 14 -> 7
const Conv2dShape kD28c = conv(128, 128, 7, 1, 7, 1, 0);     // 128 -> 1 logit: the kernel covers 7x7

void BM_Conv2dForward(benchmark::State& state, Conv2dShape s) {
  const auto x = random_floats(s.N * s.C * s.H * s.W, 1),
             w = random_floats(s.K * s.C * s.R * s.S, 2), b = random_floats(s.K, 3);
  std::vector<float> y(static_cast<size_t>(s.N * s.K * s.P() * s.Q()));
  for (auto _ : state) {
    cpu::conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  report(state, s.N, conv_flops(s));
}

void BM_Conv2dBackwardData(benchmark::State& state, Conv2dShape s) {
  const auto gy = random_floats(s.N * s.K * s.P() * s.Q(), 1),
             w = random_floats(s.K * s.C * s.R * s.S, 2);
  std::vector<float> gx(static_cast<size_t>(s.N * s.C * s.H * s.W));
  for (auto _ : state) {
    cpu::conv2d_backward_data(s, gy.data(), w.data(), gx.data());
    benchmark::DoNotOptimize(gx.data());
    benchmark::ClobberMemory();
  }
  report(state, s.N, conv_flops(s));
}

void BM_Conv2dBackwardWeight(benchmark::State& state, Conv2dShape s) {
  const auto x = random_floats(s.N * s.C * s.H * s.W, 1),
             gy = random_floats(s.N * s.K * s.P() * s.Q(), 2);
  std::vector<float> gw(static_cast<size_t>(s.K * s.C * s.R * s.S));
  for (auto _ : state) {
    cpu::conv2d_backward_weight(s, x.data(), gy.data(), gw.data());
    benchmark::DoNotOptimize(gw.data());
    benchmark::ClobberMemory();
  }
  report(state, s.N, conv_flops(s));
}

BENCHMARK_CAPTURE(BM_Conv2dForward, vae_n64_1to32_28x28_k4s2p1, kVae1)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dForward, vae_n64_32to64_14x14_k4s2p1, kVae2)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dForward, dcgan_n16_64to128_32x32_k4s2p1, kDcgan)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dForward, n16_64to64_32x32_k3s1p1, kSame3x3)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dForward, dcgan28_n128_1to64_28x28_k4s2p1, kD28a)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dForward, dcgan28_n128_64to128_14x14_k4s2p1, kD28b)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dForward, dcgan28_n128_128to1_7x7_k7, kD28c)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackwardData, vae_n64_32to64_14x14_k4s2p1, kVae2)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackwardData, dcgan28_n128_1to64_28x28_k4s2p1, kD28a)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackwardData, dcgan28_n128_64to128_14x14_k4s2p1, kD28b)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackwardData, dcgan28_n128_128to1_7x7_k7, kD28c)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackwardData, dcgan_n16_64to128_32x32_k4s2p1, kDcgan)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackwardWeight, vae_n64_1to32_28x28_k4s2p1, kVae1)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackwardWeight, vae_n64_32to64_14x14_k4s2p1, kVae2)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackwardWeight, dcgan_n16_64to128_32x32_k4s2p1, kDcgan)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackwardWeight, dcgan28_n128_1to64_28x28_k4s2p1, kD28a)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackwardWeight, dcgan28_n128_64to128_14x14_k4s2p1, kD28b)->UseRealTime();
BENCHMARK_CAPTURE(BM_Conv2dBackwardWeight, dcgan28_n128_128to1_7x7_k7, kD28c)->UseRealTime();

// ---- conv_transpose2d ---------------------------------------------------------------------------

ConvTranspose2dShape convt(int64_t N, int64_t C, int64_t H, int64_t K, int64_t R, int64_t stride,
                           int64_t pad) {
  ConvTranspose2dShape s;
  s.N = N, s.C = C, s.H = H, s.W = H, s.K = K, s.R = R, s.S = R;
  s.stride_h = s.stride_w = stride, s.pad_h = s.pad_w = pad;
  return s;
}

double convt_flops(const ConvTranspose2dShape& s) {
  return 2.0 * s.N * s.C * s.K * s.R * s.S * s.H * s.W;
}

const ConvTranspose2dShape kDcganG =
    convt(16, 128, 16, 64, 4, 2, 1);                                // DCGAN-64 generator: 16 -> 32
const ConvTranspose2dShape kVaeD1 = convt(64, 64, 7, 32, 4, 2, 1);  // VAE decoder: 7 -> 14
const ConvTranspose2dShape kVaeD2 = convt(64, 32, 14, 1, 4, 2, 1);  // VAE decoder: 14 -> 28
const ConvTranspose2dShape kG28a = convt(128, 100, 1, 128, 7, 1, 0);  // DCGAN-28 generator: 1 -> 7
const ConvTranspose2dShape kG28b = convt(128, 128, 7, 64, 4, 2, 1);   // 7 -> 14
const ConvTranspose2dShape kG28c = convt(128, 64, 14, 1, 4, 2, 1);    // 14 -> 28

void BM_ConvTranspose2dForward(benchmark::State& state, ConvTranspose2dShape s) {
  const auto x = random_floats(s.N * s.C * s.H * s.W, 1),
             w = random_floats(s.C * s.K * s.R * s.S, 2), b = random_floats(s.K, 3);
  std::vector<float> y(static_cast<size_t>(s.N * s.K * s.P() * s.Q()));
  for (auto _ : state) {
    cpu::conv_transpose2d_forward(s, x.data(), w.data(), b.data(), y.data());
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  report(state, s.N, convt_flops(s));
}

void BM_ConvTranspose2dBackwardData(benchmark::State& state, ConvTranspose2dShape s) {
  const auto gy = random_floats(s.N * s.K * s.P() * s.Q(), 1),
             w = random_floats(s.C * s.K * s.R * s.S, 2);
  std::vector<float> gx(static_cast<size_t>(s.N * s.C * s.H * s.W));
  for (auto _ : state) {
    cpu::conv_transpose2d_backward_data(s, gy.data(), w.data(), gx.data());
    benchmark::DoNotOptimize(gx.data());
    benchmark::ClobberMemory();
  }
  report(state, s.N, convt_flops(s));
}

void BM_ConvTranspose2dBackwardWeight(benchmark::State& state, ConvTranspose2dShape s) {
  const auto x = random_floats(s.N * s.C * s.H * s.W, 1),
             gy = random_floats(s.N * s.K * s.P() * s.Q(), 2);
  std::vector<float> gw(static_cast<size_t>(s.C * s.K * s.R * s.S));
  for (auto _ : state) {
    cpu::conv_transpose2d_backward_weight(s, x.data(), gy.data(), gw.data());
    benchmark::DoNotOptimize(gw.data());
    benchmark::ClobberMemory();
  }
  report(state, s.N, convt_flops(s));
}

BENCHMARK_CAPTURE(BM_ConvTranspose2dForward, dcgan_n16_128to64_16x16_k4s2p1, kDcganG)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_ConvTranspose2dForward, vae_n64_64to32_7x7_k4s2p1, kVaeD1)->UseRealTime();
BENCHMARK_CAPTURE(BM_ConvTranspose2dForward, vae_n64_32to1_14x14_k4s2p1, kVaeD2)->UseRealTime();
BENCHMARK_CAPTURE(BM_ConvTranspose2dForward, dcgan28_n128_100to128_1x1_k7, kG28a)->UseRealTime();
BENCHMARK_CAPTURE(BM_ConvTranspose2dForward, dcgan28_n128_128to64_7x7_k4s2p1, kG28b)->UseRealTime();
BENCHMARK_CAPTURE(BM_ConvTranspose2dForward, dcgan28_n128_64to1_14x14_k4s2p1, kG28c)->UseRealTime();
BENCHMARK_CAPTURE(BM_ConvTranspose2dBackwardData, dcgan_n16_128to64_16x16_k4s2p1, kDcganG)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_ConvTranspose2dBackwardData, dcgan28_n128_128to64_7x7_k4s2p1, kG28b)->UseRealTime();
BENCHMARK_CAPTURE(BM_ConvTranspose2dBackwardWeight, dcgan_n16_128to64_16x16_k4s2p1, kDcganG)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_ConvTranspose2dBackwardWeight, vae_n64_32to1_14x14_k4s2p1, kVaeD2)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_ConvTranspose2dBackwardWeight, dcgan28_n128_100to128_1x1_k7, kG28a)->UseRealTime();
BENCHMARK_CAPTURE(BM_ConvTranspose2dBackwardWeight, dcgan28_n128_128to64_7x7_k4s2p1, kG28b)->UseRealTime();
BENCHMARK_CAPTURE(BM_ConvTranspose2dBackwardWeight, dcgan28_n128_64to1_14x14_k4s2p1, kG28c)->UseRealTime();

}  // namespace
