// bench_optim.cpp: the CUDA optimizer steps in GB/s beside the DRAM bandwidth, and what the
// multi-tensor Adam saves in launches.
//
// Adam reads p, g, m, v and writes p, m, v: 28 bytes per parameter. SGD with momentum reads p, g,
// buf and writes p, buf: 20 bytes.
// - BM_AdamStep: one tensor of 1M and 16M parameters (bandwidth bound).
// - BM_AdamStepLoop / BM_AdamStepMulti: the DCGAN-64 generator's 13 parameter tensors (nz = 100,
//   ngf = 64, 3 channels: 3.58M parameters), one adam_step per tensor (13 launches) against one
//   adam_step_multi (one launch). The difference is launch overhead and the tail of small tensors.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "bench/cuda/cuda_bench.h"
#include "kernels/optim.h"

namespace ll::bench {
namespace {

namespace kcu = ll::kernels::cuda;

f::AdamCoeffs coeffs() { return kernels::adam_coeffs(2e-4, 0.5, 0.999, 1e-8, 0.0, false, 10); }

void BM_AdamStep(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = state.range(0);
  DeviceArray p(n, 1), g(n, 2), m(n, 3, -0.1f, 0.1f), v(n, 4, 1e-4f, 1e-2f);
  const f::AdamCoeffs c = coeffs();
  time_gpu(state, [&] { kcu::adam_step(c, p.p, g.p, m.p, v.p, n, kc::compute_stream()); });
  report_bandwidth(state, 28.0 * static_cast<double>(n));
}
BENCHMARK(BM_AdamStep)->ArgName("n")->Arg(1 << 20)->Arg(1 << 24)->UseManualTime();

void BM_SgdMomentumStep(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = state.range(0);
  DeviceArray p(n, 1), g(n, 2), buf(n, 3);
  const f::SgdCoeffs c{0.01f, 0.9f, 0.0f, 0.0f, false, false};
  time_gpu(state, [&] { kcu::sgd_step(c, p.p, g.p, buf.p, n, kc::compute_stream()); });
  report_bandwidth(state, 20.0 * static_cast<double>(n));
}
BENCHMARK(BM_SgdMomentumStep)->ArgName("n")->Arg(1 << 20)->Arg(1 << 24)->UseManualTime();

// The DCGAN-64 generator (models/gan.cpp): ConvTranspose2d weights (no bias) and BatchNorm2d
// weight and bias, in registration order.
const std::vector<int64_t> kDcgan64Generator = {
    100 * 512 * 16, 512, 512,  // convt 100 -> 512, 4x4; BatchNorm2d(512)
    512 * 256 * 16, 256, 256,  // convt 512 -> 256
    256 * 128 * 16, 128, 128,  // convt 256 -> 128
    128 * 64 * 16,  64,  64,   // convt 128 -> 64
    64 * 3 * 16,               // convt 64 -> 3
};

struct ParamSet {
  explicit ParamSet(const std::vector<int64_t>& sizes) {
    for (size_t k = 0; k < sizes.size(); ++k) {
      const int64_t n = sizes[k];
      const uint64_t s = 10 * k;
      arrays.push_back(std::make_unique<DeviceArray>(n, s + 1));
      arrays.push_back(std::make_unique<DeviceArray>(n, s + 2));
      arrays.push_back(std::make_unique<DeviceArray>(n, s + 3, -0.1f, 0.1f));
      arrays.push_back(std::make_unique<DeviceArray>(n, s + 4, 1e-4f, 1e-2f));
      tensors.push_back({arrays[4 * k]->p, arrays[4 * k + 1]->p, arrays[4 * k + 2]->p,
                         arrays[4 * k + 3]->p, n});
      total += n;
    }
  }
  std::vector<std::unique_ptr<DeviceArray>> arrays;
  std::vector<kcu::AdamTensor> tensors;
  int64_t total = 0;
};

void BM_AdamStepLoop_Dcgan64Generator(benchmark::State& state) {
  if (!require_gpu(state)) return;
  ParamSet ps(kDcgan64Generator);
  const f::AdamCoeffs c = coeffs();
  time_gpu(state, [&] {
    for (const kcu::AdamTensor& t : ps.tensors) {
      kcu::adam_step(c, t.p, t.g, t.m, t.v, t.n, kc::compute_stream());
    }
  });
  report_bandwidth(state, 28.0 * static_cast<double>(ps.total));
  state.counters["launches"] = static_cast<double>(ps.tensors.size());
}
BENCHMARK(BM_AdamStepLoop_Dcgan64Generator)->UseManualTime();

void BM_AdamStepMulti_Dcgan64Generator(benchmark::State& state) {
  if (!require_gpu(state)) return;
  ParamSet ps(kDcgan64Generator);
  const f::AdamCoeffs c = coeffs();
  time_gpu(state, [&] {
    kcu::adam_step_multi(c, ps.tensors.data(), static_cast<int64_t>(ps.tensors.size()),
                         kc::compute_stream());
  });
  report_bandwidth(state, 28.0 * static_cast<double>(ps.total));
  state.counters["launches"] = 1;
}
BENCHMARK(BM_AdamStepMulti_Dcgan64Generator)->UseManualTime();

}  // namespace
}  // namespace ll::bench
