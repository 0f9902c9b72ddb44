// cuda_bench.h: what the CUDA benchmarks share.
//
// Timing: CUDA events around the work on the compute stream, after a warm-up, reported through
// Google Benchmark's manual time (UseManualTime), so the figures are GPU time, not host time.
// Without a GPU every benchmark reports SkipWithError("no GPU: <reason>") and times nothing.
// Inputs are seeded random values, never all zeros.
#pragma once
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda_runtime.h"

namespace ll::bench {

namespace kc = ll::kernels::cuda;

// True when a GPU is usable; otherwise marks the benchmark skipped with the reason.
inline bool require_gpu(benchmark::State& state) {
  std::string why;
  if (kc::device_count(&why) > 0) return true;
  state.SkipWithError(("no GPU: " + why).c_str());
  return false;
}

// Device buffer of n floats, seeded uniform values in [lo, hi).
struct DeviceArray {
  explicit DeviceArray(int64_t n, uint64_t seed = 1, float lo = -1.0f, float hi = 1.0f)
      : n(n), p(static_cast<float*>(kc::malloc_device(static_cast<size_t>(n) * sizeof(float)))) {
    std::mt19937_64 g(seed);
    std::uniform_real_distribution<float> u(lo, hi);
    std::vector<float> h(static_cast<size_t>(n));
    for (float& x : h) x = u(g);
    kc::memcpy_host_to_device(p, h.data(), h.size() * sizeof(float));
  }
  ~DeviceArray() { kc::free_device(p); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  int64_t n;
  float* p;
};

// Runs `work` (which enqueues on kc::compute_stream()) once per iteration and sets each iteration's
// time from CUDA events. Three warm-up calls first. Register the benchmark with ->UseManualTime().
template <typename Work>
void time_gpu(benchmark::State& state, Work&& work) {
  for (int i = 0; i < 3; ++i) work();
  kc::synchronize();
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  for (auto _ : state) {
    cudaEventRecord(start, kc::compute_stream());
    work();
    cudaEventRecord(stop, kc::compute_stream());
    float ms = 0.0f;
    cudaError_t err = cudaEventSynchronize(stop);
    if (err == cudaSuccess) err = cudaEventElapsedTime(&ms, start, stop);
    if (err != cudaSuccess) {  // a fault in `work`: no time to report
      state.SkipWithError((std::string("CUDA error: ") + cudaGetErrorString(err)).c_str());
      break;
    }
    state.SetIterationTime(static_cast<double>(ms) * 1e-3);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

// The device's peak DRAM bandwidth in bytes/s from its properties (2 * memory clock * bus width),
// for "fraction of the bandwidth limit" counters.
inline double peak_bandwidth() {
  int clock_khz = 0, bus_bits = 0;
  cudaDeviceGetAttribute(&clock_khz, cudaDevAttrMemoryClockRate, 0);
  cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, 0);
  return 2.0 * clock_khz * 1e3 * (bus_bits / 8.0);
}

// Sets the counters of a memory-bound kernel that moves `bytes` per iteration.
inline void report_bandwidth(benchmark::State& state, double bytes) {
  state.counters["GB/s"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["bytes"] = bytes;
  state.counters["peak_GB/s"] = peak_bandwidth() * 1e-9;
}

// Sets the counters of a compute-bound kernel doing `flops` per iteration.
inline void report_flops(benchmark::State& state, double flops) {
  state.counters["TFLOP/s"] = benchmark::Counter(flops * 1e-12, benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace ll::bench
