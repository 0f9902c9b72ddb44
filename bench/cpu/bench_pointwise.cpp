// bench_pointwise.cpp: the memory-bound CPU kernels (activations, element-wise, reductions,
// BatchNorm, losses, embedding, random fills, dropout, VAE, optimizers) at the shapes of our
// models.
//
//   ./build/bench/bench_kernels_cpu --benchmark_filter='^BM_Pw' --benchmark_min_time=0.1
//
// bytes_per_second counts the float traffic the op must do at least: every input read once and
// every output written once (a read-modify-write buffer counts twice), so it compares directly with
// the memory bandwidth of the machine. The random ops also report items/s, since at small sizes
// they are bound by the Philox and Box-Muller arithmetic, not by memory.
// Times are wall-clock (UseRealTime): the OpenMP threads do work the CPU timer of one thread
// misses.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "kernels/activation.h"
#include "kernels/batchnorm.h"
#include "kernels/instancenorm.h"
#include "kernels/dropout.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/loss.h"
#include "kernels/optim.h"
#include "kernels/random.h"
#include "kernels/reduce.h"
#include "kernels/vae.h"

namespace {

namespace k = ll::kernels;
namespace cpu = ll::kernels::cpu;

std::vector<float> random_floats(int64_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(gen);
  return v;
}

// `floats` = float values moved per iteration (reads + writes).
void report(benchmark::State& state, int64_t items, int64_t floats) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * items);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * floats *
                          static_cast<int64_t>(sizeof(float)));
}

// ---- activations: (B, features) = 128 x 400 (the MLP VAE hidden layer) and a 1M-element
// feature map (DCGAN's 64 x 128 x 8 x 16 range) ------------------------------------------------
void BM_PwActivationForward(benchmark::State& state) {
  const auto a = static_cast<k::Activation>(state.range(0));
  const int64_t n = state.range(1);
  const auto x = random_floats(n, 1, -4.0f, 4.0f);
  std::vector<float> y(n);
  for (auto _ : state) {
    cpu::activation_forward(a, 0.2f, x.data(), y.data(), n);
    benchmark::DoNotOptimize(y.data());
  }
  report(state, n, 2 * n);
}
void BM_PwActivationBackward(benchmark::State& state) {
  const auto a = static_cast<k::Activation>(state.range(0));
  const int64_t n = state.range(1);
  const auto x = random_floats(n, 1, -4.0f, 4.0f), gy = random_floats(n, 2);
  std::vector<float> y(n), gx(n);
  cpu::activation_forward(a, 0.2f, x.data(), y.data(), n);
  for (auto _ : state) {
    cpu::activation_backward(a, 0.2f, x.data(), y.data(), gy.data(), gx.data(), n);
    benchmark::DoNotOptimize(gx.data());
  }
  report(state, n, 3 * n);
}
// range(0): 0 ReLU, 1 LeakyReLU, 2 Tanh, 3 Sigmoid
BENCHMARK(BM_PwActivationForward)
    ->ArgNames({"act", "n"})
    ->Args({0, 128 * 400})
    ->Args({1, 128 * 400})
    ->Args({2, 128 * 400})
    ->Args({3, 128 * 400})
    ->Args({1, 1 << 20})
    ->Args({3, 1 << 20})
    ->UseRealTime();
BENCHMARK(BM_PwActivationBackward)
    ->ArgNames({"act", "n"})
    ->Args({0, 128 * 400})
    ->Args({1, 128 * 400})
    ->Args({3, 128 * 400})
    ->Args({1, 1 << 20})
    ->UseRealTime();

// ---- element-wise: gradient accumulation (add in place) and axpy over 1M ----------------------
void BM_PwAdd(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto a = random_floats(n, 3);
  auto g = random_floats(n, 4);
  for (auto _ : state) {
    cpu::add(g.data(), a.data(), g.data(), n);
    benchmark::DoNotOptimize(g.data());
  }
  report(state, n, 3 * n);
}
BENCHMARK(BM_PwAdd)->Arg(128 * 400)->Arg(1 << 20)->UseRealTime();

void BM_PwTranspose2d(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const auto x = random_floats(rows * cols, 5);
  std::vector<float> y(rows * cols);
  for (auto _ : state) {
    cpu::transpose2d(x.data(), y.data(), rows, cols);
    benchmark::DoNotOptimize(y.data());
  }
  report(state, rows * cols, 2 * rows * cols);
}
BENCHMARK(BM_PwTranspose2d)->Args({400, 784})->Args({1024, 1024})->UseRealTime();

// ---- reductions: the whole-tensor sum and a Linear bias gradient, (N, out) summed over N -------
void BM_PwSumAll(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto x = random_floats(n, 6);
  float s = 0.0f;
  for (auto _ : state) {
    cpu::sum_all(x.data(), n, &s);
    benchmark::DoNotOptimize(s);
  }
  report(state, n, n);
}
BENCHMARK(BM_PwSumAll)->Arg(128 * 784)->Arg(1 << 20)->UseRealTime();

void BM_PwSumDim(benchmark::State& state) {
  const int64_t outer = state.range(0), mid = state.range(1), inner = state.range(2);
  const auto x = random_floats(outer * mid * inner, 7);
  std::vector<float> y(outer * inner);
  for (auto _ : state) {
    cpu::sum_dim(x.data(), y.data(), outer, mid, inner);
    benchmark::DoNotOptimize(y.data());
  }
  report(state, outer * mid * inner, outer * mid * inner + outer * inner);
}
// (1, 128, 400): Linear bias grad; (128, 784, 1): per-row sums; (64, 64, 256): conv feature map.
BENCHMARK(BM_PwSumDim)
    ->ArgNames({"outer", "mid", "inner"})
    ->Args({1, 128, 400})
    ->Args({128, 784, 1})
    ->Args({64, 64, 256})
    ->UseRealTime();

// ---- BatchNorm2d: N=64 C=64 16x16 (DCGAN's discriminator), BatchNorm1d 128 x 400 --------------
void BM_PwBatchNormTrainForward(benchmark::State& state) {
  const k::BatchNormShape s{state.range(0), state.range(1), state.range(2)};
  const int64_t total = s.N * s.C * s.inner;
  const auto x = random_floats(total, 8), gamma = random_floats(s.C, 9),
             beta = random_floats(s.C, 10);
  std::vector<float> y(total), rm(s.C, 0.0f), rv(s.C, 1.0f), sm(s.C), si(s.C);
  for (auto _ : state) {
    cpu::batchnorm_forward_train(s, x.data(), gamma.data(), beta.data(), 1e-5f, 0.1f, rm.data(),
                                 rv.data(), y.data(), sm.data(), si.data());
    benchmark::DoNotOptimize(y.data());
  }
  report(state, total, 4 * total);  // x read three times (mean, variance, normalize), y written
}
void BM_PwBatchNormTrainBackward(benchmark::State& state) {
  const k::BatchNormShape s{state.range(0), state.range(1), state.range(2)};
  const int64_t total = s.N * s.C * s.inner;
  const auto x = random_floats(total, 8), gy = random_floats(total, 11),
             gamma = random_floats(s.C, 9);
  std::vector<float> y(total), gx(total), sm(s.C), si(s.C), gg(s.C), gb(s.C);
  cpu::batchnorm_forward_train(s, x.data(), gamma.data(), nullptr, 1e-5f, 0.1f, nullptr, nullptr,
                               y.data(), sm.data(), si.data());
  for (auto _ : state) {
    cpu::batchnorm_backward_train(s, x.data(), gy.data(), gamma.data(), sm.data(), si.data(),
                                  gx.data(), gg.data(), gb.data());
    benchmark::DoNotOptimize(gx.data());
  }
  report(state, total, 7 * total);  // x, gy read in two passes (sums, gx), gx written
}
BENCHMARK(BM_PwBatchNormTrainForward)
    ->ArgNames({"N", "C", "HW"})
    ->Args({64, 64, 256})
    ->Args({128, 400, 1})
    ->UseRealTime();
BENCHMARK(BM_PwBatchNormTrainBackward)
    ->ArgNames({"N", "C", "HW"})
    ->Args({64, 64, 256})
    ->Args({128, 400, 1})
    ->UseRealTime();
void BM_PwBatchNormMoments(benchmark::State& state) {  // synchronized BatchNorm's shard statistics
  const k::BatchNormShape s{state.range(0), state.range(1), state.range(2)};
  const int64_t total = s.N * s.C * s.inner;
  const auto x = random_floats(total, 8);
  std::vector<float> mean(s.C), var(s.C);
  for (auto _ : state) {
    cpu::batchnorm_moments(s, x.data(), mean.data(), var.data());
    benchmark::DoNotOptimize(var.data());
  }
  report(state, total, 2 * total);  // x read twice (mean, variance)
}
void BM_PwBatchNormBackwardInput(benchmark::State& state) {  // its gx from the batch's sums
  const k::BatchNormShape s{state.range(0), state.range(1), state.range(2)};
  const int64_t total = s.N * s.C * s.inner;
  const auto x = random_floats(total, 8), gy = random_floats(total, 11), gamma = random_floats(s.C, 9),
             mean = random_floats(s.C, 12), mg = random_floats(s.C, 13), mgx = random_floats(s.C, 14);
  const std::vector<float> var(s.C, 1.0f);
  std::vector<float> gx(total);
  for (auto _ : state) {
    cpu::batchnorm_backward_input(s, x.data(), gy.data(), gamma.data(), mean.data(), var.data(), 1e-5f,
                                  mg.data(), mgx.data(), gx.data());
    benchmark::DoNotOptimize(gx.data());
  }
  report(state, total, 3 * total);  // x, gy read, gx written
}
BENCHMARK(BM_PwBatchNormMoments)->ArgNames({"N", "C", "HW"})->Args({64, 64, 256})->Args({128, 400, 1})->UseRealTime();
BENCHMARK(BM_PwBatchNormBackwardInput)->ArgNames({"N", "C", "HW"})->Args({64, 64, 256})->Args({128, 400, 1})->UseRealTime();

// ---- InstanceNorm2d: pix2pix-28's U-Net planes at batch 16, (64, 16x16) and (512, 2x2) --------
void BM_PwInstanceNormForward(benchmark::State& state) {
  const k::InstanceNormShape s{state.range(0), state.range(1), state.range(2)};
  const int64_t total = s.N * s.C * s.inner;
  const auto x = random_floats(total, 8), gamma = random_floats(s.C, 9), beta = random_floats(s.C, 10);
  std::vector<float> y(total), sm(s.N * s.C), si(s.N * s.C);
  for (auto _ : state) {
    cpu::instancenorm_forward(s, x.data(), gamma.data(), beta.data(), 1e-5f, y.data(), sm.data(), si.data());
    benchmark::DoNotOptimize(y.data());
  }
  report(state, total, 4 * total);  // x read three times (mean, variance, normalize), y written
}
void BM_PwInstanceNormBackward(benchmark::State& state) {
  const k::InstanceNormShape s{state.range(0), state.range(1), state.range(2)};
  const int64_t total = s.N * s.C * s.inner;
  const auto x = random_floats(total, 8), gy = random_floats(total, 11), gamma = random_floats(s.C, 9);
  std::vector<float> y(total), gx(total), sm(s.N * s.C), si(s.N * s.C), gg(s.C), gb(s.C);
  cpu::instancenorm_forward(s, x.data(), gamma.data(), nullptr, 1e-5f, y.data(), sm.data(), si.data());
  for (auto _ : state) {
    cpu::instancenorm_backward(s, x.data(), gy.data(), gamma.data(), sm.data(), si.data(), gx.data(), gg.data(),
                               gb.data());
    benchmark::DoNotOptimize(gx.data());
  }
  report(state, total, 5 * total);  // x, gy read twice (the second time from cache), gx written
}
BENCHMARK(BM_PwInstanceNormForward)->ArgNames({"N", "C", "HW"})->Args({16, 64, 256})->Args({16, 512, 4})->UseRealTime();
BENCHMARK(BM_PwInstanceNormBackward)->ArgNames({"N", "C", "HW"})->Args({16, 64, 256})->Args({16, 512, 4})->UseRealTime();

// ---- losses: a VAE's reconstruction over 128 x 784 and a classifier's 128 x 10 ---------------
void BM_PwBceWithLogits(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto x = random_floats(n, 12, -6.0f, 6.0f), t = random_floats(n, 13, 0.0f, 1.0f);
  std::vector<float> gx(n);
  float loss = 0.0f;
  for (auto _ : state) {  // forward + backward, as one training step runs them
    cpu::bce_with_logits_forward(x.data(), t.data(), n, k::Reduction::Sum, &loss);
    cpu::bce_with_logits_backward(x.data(), t.data(), n, k::Reduction::Sum, 1.0f, gx.data());
    benchmark::DoNotOptimize(gx.data());
  }
  report(state, n, 5 * n);
}
BENCHMARK(BM_PwBceWithLogits)->Arg(128 * 784)->UseRealTime();

void BM_PwMse(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto x = random_floats(n, 14), t = random_floats(n, 15, 0.0f, 1.0f);
  std::vector<float> gx(n);
  float loss = 0.0f;
  for (auto _ : state) {
    cpu::mse_forward(x.data(), t.data(), n, k::Reduction::Mean, &loss);
    cpu::mse_backward(x.data(), t.data(), n, k::Reduction::Mean, 1.0f, gx.data());
    benchmark::DoNotOptimize(gx.data());
  }
  report(state, n, 5 * n);
}
BENCHMARK(BM_PwMse)->Arg(128 * 784)->UseRealTime();

// Reduction::None, as `latentlab score` runs it: the per-element terms of a batch (no gradient).
void BM_PwLossElementwise(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto x = random_floats(n, 12, -6.0f, 6.0f), t = random_floats(n, 13, 0.0f, 1.0f);
  std::vector<float> out(n);
  for (auto _ : state) {
    cpu::bce_with_logits_elementwise(x.data(), t.data(), n, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  report(state, n, 3 * n);
}
BENCHMARK(BM_PwLossElementwise)->Arg(128 * 784)->UseRealTime();

void BM_PwSoftmaxCrossEntropy(benchmark::State& state) {
  const int64_t N = state.range(0), C = state.range(1);
  const auto logits = random_floats(N * C, 16, -5.0f, 5.0f);
  std::vector<int32_t> labels(N);
  for (int64_t n = 0; n < N; ++n) labels[n] = static_cast<int32_t>(n % C);
  std::vector<float> gx(N * C);
  float loss = 0.0f;
  for (auto _ : state) {
    cpu::softmax_cross_entropy_forward(logits.data(), labels.data(), N, C, k::Reduction::Mean,
                                       &loss);
    cpu::softmax_cross_entropy_backward(logits.data(), labels.data(), N, C, k::Reduction::Mean,
                                        1.0f, gx.data());
    benchmark::DoNotOptimize(gx.data());
  }
  report(state, N, 3 * N * C);
}
BENCHMARK(BM_PwSoftmaxCrossEntropy)
    ->ArgNames({"N", "C"})
    ->Args({128, 10})
    ->Args({128, 1000})
    ->UseRealTime();

// ---- embedding: the conditional GAN's label embedding, 10 classes x 50, batch 128 ------------
void BM_PwEmbedding(benchmark::State& state) {
  const int64_t N = state.range(0), num = state.range(1), dim = state.range(2);
  const auto table = random_floats(num * dim, 17), gy = random_floats(N * dim, 18);
  std::vector<int32_t> idx(N);
  for (int64_t n = 0; n < N; ++n) idx[n] = static_cast<int32_t>((n * 7) % num);
  std::vector<float> y(N * dim), gt(num * dim);
  for (auto _ : state) {
    cpu::embedding_forward(table.data(), idx.data(), y.data(), N, num, dim);
    cpu::embedding_backward(gy.data(), idx.data(), gt.data(), N, num, dim);
    benchmark::DoNotOptimize(gt.data());
  }
  report(state, N, 4 * N * dim + num * dim);
}
BENCHMARK(BM_PwEmbedding)
    ->ArgNames({"N", "num", "dim"})
    ->Args({128, 10, 50})
    ->Args({4096, 1000, 256})
    ->UseRealTime();

// ---- random fills and dropout: 1M values (a DCGAN batch of noise is 128 x 100) -----------------
void BM_PwFillUniform(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<float> y(n);
  ll::PhiloxStream st{42, 0, 0};
  for (auto _ : state) {
    cpu::fill_uniform(y.data(), n, -1.0f, 1.0f, st);
    st.offset += static_cast<uint64_t>((n + 3) / 4 * 4);
    benchmark::DoNotOptimize(y.data());
  }
  report(state, n, n);
}
void BM_PwFillNormal(benchmark::State& state) {
  const int64_t n = state.range(0);
  std::vector<float> y(n);
  ll::PhiloxStream st{42, 0, 0};
  for (auto _ : state) {
    cpu::fill_normal(y.data(), n, 0.0f, 1.0f, st);
    st.offset += static_cast<uint64_t>((n + 3) / 4 * 4);
    benchmark::DoNotOptimize(y.data());
  }
  report(state, n, n);
}
BENCHMARK(BM_PwFillUniform)->Arg(128 * 100)->Arg(1 << 20)->UseRealTime();
BENCHMARK(BM_PwFillNormal)->Arg(128 * 100)->Arg(1 << 20)->UseRealTime();

void BM_PwDropoutForward(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto x = random_floats(n, 19);
  std::vector<float> y(n);
  const ll::PhiloxStream st{42, 0, 0};
  for (auto _ : state) {
    cpu::dropout_forward(x.data(), y.data(), n, 0.5f, st);
    benchmark::DoNotOptimize(y.data());
  }
  report(state, n, 2 * n);
}
BENCHMARK(BM_PwDropoutForward)->Arg(128 * 400)->Arg(1 << 20)->UseRealTime();

// ---- VAE: latent 128 x 20 (the MLP VAE) and 1M -----------------------------------------------
void BM_PwReparam(benchmark::State& state) {  // forward + backward
  const int64_t n = state.range(0);
  const auto mu = random_floats(n, 20), lv = random_floats(n, 21), gz = random_floats(n, 22);
  std::vector<float> z(n), gmu(n), glv(n);
  const ll::PhiloxStream st{42, 0, 0};
  for (auto _ : state) {
    cpu::reparam_forward(mu.data(), lv.data(), z.data(), n, st);
    cpu::reparam_backward(lv.data(), gz.data(), gmu.data(), glv.data(), n, st);
    benchmark::DoNotOptimize(glv.data());
  }
  report(state, n, 7 * n);
}
BENCHMARK(BM_PwReparam)->Arg(128 * 20)->Arg(1 << 20)->UseRealTime();

void BM_PwKlFused(benchmark::State& state) {
  const int64_t n = state.range(0);
  const auto mu = random_floats(n, 23), lv = random_floats(n, 24);
  std::vector<float> gmu(n), glv(n);
  float loss = 0.0f;
  for (auto _ : state) {
    cpu::kl_normal_fused(mu.data(), lv.data(), n, 1.0f / 128, &loss, gmu.data(), glv.data());
    benchmark::DoNotOptimize(loss);
  }
  report(state, n, 4 * n);
}
BENCHMARK(BM_PwKlFused)->Arg(128 * 20)->Arg(1 << 20)->UseRealTime();

// ---- optimizers over 1M parameters (the MLP VAE has ~0.65M) -----------------------------------
void BM_PwAdam(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto p = random_floats(n, 25);
  const auto g = random_floats(n, 26);
  std::vector<float> m(n, 0.0f), v(n, 0.0f);
  const ll::f::AdamCoeffs c = ll::kernels::adam_coeffs(1e-3, 0.9, 0.999, 1e-8, 0.0, false, 10);
  for (auto _ : state) {
    cpu::adam_step(c, p.data(), g.data(), m.data(), v.data(), n);
    benchmark::DoNotOptimize(p.data());
  }
  report(state, n, 7 * n);  // p, m, v read and written, g read
}
BENCHMARK(BM_PwAdam)->Arg(1 << 20)->UseRealTime();

void BM_PwSgdMomentum(benchmark::State& state) {
  const int64_t n = state.range(0);
  auto p = random_floats(n, 27);
  const auto g = random_floats(n, 28);
  std::vector<float> buf(n, 0.0f);
  ll::f::SgdCoeffs c{0.01f, 0.9f, 0.0f, 0.0f, false, false};
  for (auto _ : state) {
    cpu::sgd_step(c, p.data(), g.data(), buf.data(), n);
    benchmark::DoNotOptimize(p.data());
  }
  report(state, n, 5 * n);
}
BENCHMARK(BM_PwSgdMomentum)->Arg(1 << 20)->UseRealTime();

}  // namespace
