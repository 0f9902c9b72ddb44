// bench_gemm.cpp: cuBLAS GEMM (kernels/cuda/gemm.cu) at the MLP-VAE's Linear shapes, batch 128,
// for the model's default hidden width 400 and for 512: per layer the forward product and both
// backward products, as engine/ops/linear.cpp calls them:
//   forward          y  (B, out) = x (B, in) W^T       gemm(false, true,  B, out, in)
//   backward data    gx (B, in)  = gy (B, out) W       gemm(false, false, B, in, out)
//   backward weight  gW (out, in) = gy^T x             gemm(true,  false, out, in, B)
// plus a 4096^3 product for the device's FP32 and TF32 rates, and the bias kernels
// (kernels/cuda/bias.cu) at Linear shapes (inner == 1, 128 to a million rows) and conv shapes.
//
//   ./build/bench/bench_cuda_gemm --benchmark_filter='mlp_vae_h400'
//
// Counters: TFLOP/s with FLOPs = 2 M N K; GB/s for the bias kernels (bytes: bias_add reads and
// writes y, 8 N C inner; bias_backward reads gy, 4 N C inner).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>
#include <vector>

#include "bench/cuda/cuda_bench.h"
#include "kernels/bias.h"
#include "kernels/gemm.h"

namespace {

using ll::bench::DeviceArray;
namespace kc = ll::kernels::cuda;

void BM_Gemm(benchmark::State& state, bool ta, bool tb, int64_t M, int64_t N, int64_t K, bool tf32) {
  if (!ll::bench::require_gpu(state)) return;
  DeviceArray a(M * K, 1), b(K * N, 2), c(M * N, 3);
  const bool saved = kc::allow_tf32();
  kc::set_allow_tf32(tf32);
  ll::bench::time_gpu(state, [&] {
    kc::gemm(ta, tb, M, N, K, 1.0f, a.p, b.p, 0.0f, c.p, kc::compute_stream());
  });
  kc::set_allow_tf32(saved);
  ll::bench::report_flops(state, 2.0 * static_cast<double>(M) * N * K);
}

void BM_BiasAdd(benchmark::State& state, int64_t N, int64_t C, int64_t inner) {
  if (!ll::bench::require_gpu(state)) return;
  DeviceArray y(N * C * inner, 1), b(C, 2);
  ll::bench::time_gpu(state, [&] { kc::bias_add(y.p, b.p, N, C, inner, kc::compute_stream()); });
  ll::bench::report_bandwidth(state, 8.0 * static_cast<double>(N) * C * inner);
}

void BM_BiasBackward(benchmark::State& state, int64_t N, int64_t C, int64_t inner) {
  if (!ll::bench::require_gpu(state)) return;
  DeviceArray gy(N * C * inner, 1), gb(C, 2);
  ll::bench::time_gpu(state,
                      [&] { kc::bias_backward(gy.p, gb.p, N, C, inner, kc::compute_stream()); });
  ll::bench::report_bandwidth(state, 4.0 * static_cast<double>(N) * C * inner);
}

const bool registered = [] {
  const int64_t B = 128;
  for (const int64_t h : {400, 512}) {
    struct Linear {
      const char* name;
      int64_t in, out;
    };
    // models/vae.cpp, MLP: fc1 784 -> h, fc21 (and fc22) h -> 20, fc3 20 -> h, fc4 h -> 784
    const Linear linears[] = {{"fc1", 784, h}, {"fc21", h, 20}, {"fc3", 20, h}, {"fc4", h, 784}};
    for (const Linear& l : linears) {
      const std::string prefix = "gemm/mlp_vae_h" + std::to_string(h) + "/" + l.name + "/";
      auto reg = [&](const std::string& op, bool ta, bool tb, int64_t M, int64_t N, int64_t K) {
        benchmark::RegisterBenchmark((prefix + op).c_str(), BM_Gemm, ta, tb, M, N, K, false)
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      };
      reg("forward", false, true, B, l.out, l.in);
      reg("backward_data", false, false, B, l.in, l.out);
      reg("backward_weight", true, false, l.out, l.in, B);
    }
  }
  for (const bool tf32 : {false, true}) {
    benchmark::RegisterBenchmark(tf32 ? "gemm/square_4096/tf32" : "gemm/square_4096/fp32", BM_Gemm,
                                 false, false, int64_t{4096}, int64_t{4096}, int64_t{4096}, tf32)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
  struct BiasShape {
    const char* name;
    int64_t N, C, inner;
  };
  // Linear shapes (inner == 1: bias.cu's coalesced column sums, one row chunk for batch 128, then
  // several, then the most there are) and conv shapes.
  const BiasShape shapes[] = {{"linear_128x784", 128, 784, 1},
                              {"linear_128x8192", 128, 8192, 1},     // GAN-128 G's first Linear
                              {"linear_4096x1000", 4096, 1000, 1},   // 32 row chunks
                              {"linear_65536x10", 65536, 10, 1},     // few channels, many rows
                              {"linear_1048576x1", 1048576, 1, 1},   // one column, 1024 chunks
                              {"conv_128x512x1x1", 128, 512, 1},     // a 1x1 conv output
                              {"conv_128x64x32x32", 128, 64, 32 * 32},
                              {"conv_128x512x4x4", 128, 512, 16}};
  for (const BiasShape& s : shapes) {
    benchmark::RegisterBenchmark((std::string("bias_add/") + s.name).c_str(), BM_BiasAdd, s.N, s.C,
                                 s.inner)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark((std::string("bias_backward/") + s.name).c_str(), BM_BiasBackward,
                                 s.N, s.C, s.inner)
        ->UseManualTime()
        ->Unit(benchmark::kMicrosecond);
  }
  return true;
}();

}  // namespace
