// bench_norm_loss.cpp: the CUDA BatchNorm, InstanceNorm and losses at our models' shapes, in GB/s beside the
// device's DRAM bandwidth (all of them are memory bound; see the header of each .cu file).
//
// BatchNorm (N, C, inner), E = N * C * inner elements:
// - training forward: x read twice (statistics, normalization), y written: 12 E bytes;
// - training backward with gx: x and gy read twice, gx written: 20 E bytes;
// - eval forward: 8 E bytes.
// Shapes: the DCGAN-64 generator's BatchNorm2d layers at batch 128 (ngf = 64: (512, 4x4),
// (256, 8x8), (128, 16x16), (64, 32x32); the discriminator's are the first three again) and
// BatchNorm1d (128, 512).
// Losses at the MLP-VAE's reconstruction size (128 x 784): BCE with logits (forward reads 8 bytes
// per element; fused forward+backward also writes 4), MSE; softmax cross-entropy at (128, 10) and
// (128, 1000).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "bench/cuda/cuda_bench.h"
#include "kernels/batchnorm.h"
#include "kernels/instancenorm.h"
#include "kernels/loss.h"

namespace ll::bench {
namespace {

namespace kcu = ll::kernels::cuda;
using kernels::BatchNormShape;
using kernels::Reduction;

BatchNormShape bn_shape(const benchmark::State& state) {
  return {state.range(0), state.range(1), state.range(2)};
}

void BnShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "C", "inner"});
  b->Args({128, 512, 16});
  b->Args({128, 256, 64});
  b->Args({128, 128, 256});
  b->Args({128, 64, 1024});
  b->Args({128, 512, 1});
  b->UseManualTime();
}

void BM_BatchNormForwardTrain(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const BatchNormShape s = bn_shape(state);
  const int64_t E = s.N * s.C * s.inner;
  DeviceArray x(E, 1, 1.0f, 3.0f), y(E), gamma(s.C, 2, 0.5f, 1.5f), beta(s.C, 3),
      rm(s.C, 4), rv(s.C, 5, 0.5f, 1.5f), sm(s.C), si(s.C);
  time_gpu(state, [&] {
    kcu::batchnorm_forward_train(s, x.p, gamma.p, beta.p, 1e-5f, 0.1f, rm.p, rv.p, y.p, sm.p, si.p,
                                 kc::compute_stream());
  });
  report_bandwidth(state, 12.0 * static_cast<double>(E));
}
BENCHMARK(BM_BatchNormForwardTrain)->Apply(BnShapes);

void BM_BatchNormBackwardTrain(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const BatchNormShape s = bn_shape(state);
  const int64_t E = s.N * s.C * s.inner;
  DeviceArray x(E, 1, 1.0f, 3.0f), y(E), gy(E, 6), gx(E), gamma(s.C, 2, 0.5f, 1.5f), beta(s.C, 3),
      sm(s.C), si(s.C), gg(s.C), gb(s.C);
  // Real saved statistics from one forward.
  kcu::batchnorm_forward_train(s, x.p, gamma.p, beta.p, 1e-5f, 0.1f, nullptr, nullptr, y.p, sm.p,
                               si.p, kc::compute_stream());
  time_gpu(state, [&] {
    kcu::batchnorm_backward_train(s, x.p, gy.p, gamma.p, sm.p, si.p, gx.p, gg.p, gb.p,
                                  kc::compute_stream());
  });
  report_bandwidth(state, 20.0 * static_cast<double>(E));
}
BENCHMARK(BM_BatchNormBackwardTrain)->Apply(BnShapes);

void BM_BatchNormForwardEval(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const BatchNormShape s = bn_shape(state);
  const int64_t E = s.N * s.C * s.inner;
  DeviceArray x(E, 1), y(E), gamma(s.C, 2, 0.5f, 1.5f), beta(s.C, 3), rm(s.C, 4),
      rv(s.C, 5, 0.5f, 1.5f);
  time_gpu(state, [&] {
    kcu::batchnorm_forward_eval(s, x.p, gamma.p, beta.p, rm.p, rv.p, 1e-5f, y.p,
                                kc::compute_stream());
  });
  report_bandwidth(state, 8.0 * static_cast<double>(E));
}
BENCHMARK(BM_BatchNormForwardEval)->Apply(BnShapes);

// Synchronized BatchNorm's two new pieces (engine/ops/norm.h sync_batch_norm): the shard's moments
// (reads x once) and gx from the batch's sums (reads x and gy, writes gx). The forward's
// normalization and the backward's sums are the eval kernels above.
void BM_BatchNormMoments(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const BatchNormShape s = bn_shape(state);
  const int64_t E = s.N * s.C * s.inner;
  DeviceArray x(E, 1, 1.0f, 3.0f), mean(s.C), var(s.C);
  time_gpu(state, [&] { kcu::batchnorm_moments(s, x.p, mean.p, var.p, kc::compute_stream()); });
  report_bandwidth(state, 4.0 * static_cast<double>(E));
}
BENCHMARK(BM_BatchNormMoments)->Apply(BnShapes);

void BM_BatchNormBackwardInput(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const BatchNormShape s = bn_shape(state);
  const int64_t E = s.N * s.C * s.inner;
  DeviceArray x(E, 1, 1.0f, 3.0f), gy(E, 6), gx(E), gamma(s.C, 2, 0.5f, 1.5f), mean(s.C, 4),
      var(s.C, 5, 0.5f, 1.5f), mg(s.C, 7), mgx(s.C, 8);
  time_gpu(state, [&] {
    kcu::batchnorm_backward_input(s, x.p, gy.p, gamma.p, mean.p, var.p, 1e-5f, mg.p, mgx.p, gx.p,
                                  kc::compute_stream());
  });
  report_bandwidth(state, 12.0 * static_cast<double>(E));
}
BENCHMARK(BM_BatchNormBackwardInput)->Apply(BnShapes);

// ---- InstanceNorm (kernels/cuda/instancenorm.cu) at pix2pix-28's shapes ------------------------
// The U-Net's (ngf = 64) normalized planes at batch 16: (128, 8x8), (256, 4x4), (512, 2x2) in the
// encoder and decoder, (64, 16x16) at the decoder's last block; the PatchGAN's (128, 14x14).
// Forward: x read (twice more from cache) and y written, 8 E bytes from DRAM at best; backward:
// x and gy read, gx written, 12 E bytes.
void InShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "C", "inner"});
  b->Args({16, 64, 256});
  b->Args({16, 128, 64});
  b->Args({16, 512, 4});
  b->Args({16, 128, 196});
  b->UseManualTime();
}

void BM_InstanceNormForward(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const kernels::InstanceNormShape s{state.range(0), state.range(1), state.range(2)};
  const int64_t E = s.N * s.C * s.inner;
  DeviceArray x(E, 1, 1.0f, 3.0f), y(E), gamma(s.C, 2, 0.5f, 1.5f), beta(s.C, 3), sm(s.N * s.C), si(s.N * s.C);
  time_gpu(state, [&] {
    kcu::instancenorm_forward(s, x.p, gamma.p, beta.p, 1e-5f, y.p, sm.p, si.p, kc::compute_stream());
  });
  report_bandwidth(state, 8.0 * static_cast<double>(E));
}
BENCHMARK(BM_InstanceNormForward)->Apply(InShapes);

void BM_InstanceNormBackward(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const kernels::InstanceNormShape s{state.range(0), state.range(1), state.range(2)};
  const int64_t E = s.N * s.C * s.inner;
  DeviceArray x(E, 1, 1.0f, 3.0f), y(E), gy(E, 6), gx(E), gamma(s.C, 2, 0.5f, 1.5f), beta(s.C, 3), sm(s.N * s.C),
      si(s.N * s.C), gg(s.C), gb(s.C);
  kcu::instancenorm_forward(s, x.p, gamma.p, beta.p, 1e-5f, y.p, sm.p, si.p, kc::compute_stream());
  time_gpu(state, [&] {
    kcu::instancenorm_backward(s, x.p, gy.p, gamma.p, sm.p, si.p, gx.p, gg.p, gb.p, kc::compute_stream());
  });
  report_bandwidth(state, 12.0 * static_cast<double>(E));
}
BENCHMARK(BM_InstanceNormBackward)->Apply(InShapes);
// ---- losses at (128, 784) -----------------------------------------------------------------------
constexpr int64_t kVaeBatch = 128 * 784;

void BM_BceWithLogitsForward(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = kVaeBatch;
  DeviceArray x(n, 1, -4.0f, 4.0f), t(n, 2, 0.0f, 1.0f), loss(1);
  time_gpu(state, [&] {
    kcu::bce_with_logits_forward(x.p, t.p, n, Reduction::Sum, loss.p, kc::compute_stream());
  });
  report_bandwidth(state, 8.0 * static_cast<double>(n));
}
BENCHMARK(BM_BceWithLogitsForward)->UseManualTime();

void BM_BceWithLogitsFused(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = kVaeBatch;
  DeviceArray x(n, 1, -4.0f, 4.0f), t(n, 2, 0.0f, 1.0f), gx(n), loss(1);
  time_gpu(state, [&] {
    kcu::bce_with_logits_fused(x.p, t.p, n, Reduction::Sum, loss.p, gx.p, kc::compute_stream());
  });
  report_bandwidth(state, 12.0 * static_cast<double>(n));
}
BENCHMARK(BM_BceWithLogitsFused)->UseManualTime();

void BM_BceWithLogitsBackward(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = kVaeBatch;
  DeviceArray x(n, 1, -4.0f, 4.0f), t(n, 2, 0.0f, 1.0f), gx(n);
  time_gpu(state, [&] {
    kcu::bce_with_logits_backward(x.p, t.p, n, Reduction::Sum, 1.0f, gx.p, kc::compute_stream());
  });
  report_bandwidth(state, 12.0 * static_cast<double>(n));
}
BENCHMARK(BM_BceWithLogitsBackward)->UseManualTime();

void BM_MseForward(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = kVaeBatch;
  DeviceArray x(n, 1), t(n, 2, 0.0f, 1.0f), loss(1);
  time_gpu(state, [&] { kcu::mse_forward(x.p, t.p, n, Reduction::Sum, loss.p, kc::compute_stream()); });
  report_bandwidth(state, 8.0 * static_cast<double>(n));
}
BENCHMARK(BM_MseForward)->UseManualTime();

void BM_MseBackward(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = kVaeBatch;
  DeviceArray x(n, 1), t(n, 2, 0.0f, 1.0f), gx(n);
  time_gpu(state, [&] {
    kcu::mse_backward(x.p, t.p, n, Reduction::Sum, 1.0f, gx.p, kc::compute_stream());
  });
  report_bandwidth(state, 12.0 * static_cast<double>(n));
}
BENCHMARK(BM_MseBackward)->UseManualTime();

// Reduction::None's values (the per-image scores): one read of x and t, one write, per element.
void BM_BceWithLogitsElementwise(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = kVaeBatch;
  DeviceArray x(n, 1, -4.0f, 4.0f), t(n, 2, 0.0f, 1.0f), out(n);
  time_gpu(state, [&] { kcu::bce_with_logits_elementwise(x.p, t.p, n, out.p, kc::compute_stream()); });
  report_bandwidth(state, 12.0 * static_cast<double>(n));
}
BENCHMARK(BM_BceWithLogitsElementwise)->UseManualTime();

// Labels as int32 on the device.
struct DeviceLabels {
  DeviceLabels(int64_t N, int64_t C) : p(static_cast<int32_t*>(kc::malloc_device(sizeof(int32_t) * N))) {
    std::vector<int32_t> h(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) h[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7919 + 3) % C);
    kc::memcpy_host_to_device(p, h.data(), h.size() * sizeof(int32_t));
  }
  ~DeviceLabels() { kc::free_device(p); }
  DeviceLabels(const DeviceLabels&) = delete;
  DeviceLabels& operator=(const DeviceLabels&) = delete;
  int32_t* p;
};

void BM_SoftmaxCrossEntropyForwardBackward(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t N = state.range(0), C = state.range(1);
  DeviceArray logits(N * C, 1, -3.0f, 3.0f), gx(N * C), loss(1);
  DeviceLabels labels(N, C);
  time_gpu(state, [&] {
    kcu::softmax_cross_entropy_forward(logits.p, labels.p, N, C, Reduction::Mean, loss.p,
                                       kc::compute_stream());
    kcu::softmax_cross_entropy_backward(logits.p, labels.p, N, C, Reduction::Mean, 1.0f, gx.p,
                                        kc::compute_stream());
  });
  report_bandwidth(state, 12.0 * static_cast<double>(N * C));
}
BENCHMARK(BM_SoftmaxCrossEntropyForwardBackward)
    ->ArgNames({"N", "C"})
    ->Args({128, 10})
    ->Args({128, 1000})
    ->UseManualTime();

}  // namespace
}  // namespace ll::bench
