// bench_pointwise.cpp: the CUDA pointwise kernels (activations, element-wise arithmetic,
// copy_rows, transpose2d, the deterministic sums, random fills, dropout, padding, embedding and the
// VAE kernels), in GB/s beside the device's DRAM bandwidth: all of them are memory-bound (see the
// header of each kernels/cuda/*.cu file), so GB/s / peak_GB/s is the fraction of the limit.
//
//   ./build/bench/bench_cuda_pointwise --benchmark_filter=Activation
//
// "bytes" counts the float traffic an op must do at least: every input read once and every output
// written once (an in-place buffer counts twice). Sizes: 1M and 16M elements, and our models'
// shapes:
//   MLP-VAE     (128, 400) hidden, (128, 784) images, (128, 20) latent
//   DCGAN-64    batch 128, ngf = ndf = 64: the generator's ReLU at (128, 64, 32, 32) = 8M, its tanh
//               output (128, 3, 64, 64) = 1.5M; the discriminator's LeakyReLU at (128, 64, 32, 32)
//   GAN-128     batch 32: (32, 128, 128, 128) padded by (3, 4, 3, 4) (generator) or (0, 1, 0, 1)
//               (discriminator, also at 64 x 64 and 16 x 16); its dropout over (32, 8192)
//   cGAN-28     label embeddings (10, 10) and (10, 784) at batch 128
// Random fills also report items/s (Philox + Box-Muller arithmetic), and fill_normal is timed
// beside cuRAND's host API generator (curandGenerateNormal, Philox4_32_10) on the same buffer.
#include <benchmark/benchmark.h>
#include <curand.h>

#include <cstdint>
#include <random>
#include <vector>

#include "bench/cuda/cuda_bench.h"
#include "kernels/activation.h"
#include "kernels/dropout.h"
#include "kernels/elementwise.h"
#include "kernels/embedding.h"
#include "kernels/pad.h"
#include "kernels/random.h"
#include "kernels/reduce.h"
#include "kernels/vae.h"

namespace ll::bench {
namespace {

namespace kcu = ll::kernels::cuda;
using kernels::Activation;

constexpr int64_t k1M = int64_t{1} << 20;
constexpr int64_t k16M = int64_t{1} << 24;

double f4(int64_t floats) { return 4.0 * static_cast<double>(floats); }  // bytes of `floats` floats

// ---- activations -------------------------------------------------------------------------------
// range(0): 0 ReLU, 1 LeakyReLU, 2 Tanh, 3 Sigmoid; range(1): n.
void ActivationShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"act", "n"});
  for (int act = 0; act < 4; ++act) {
    for (int64_t n : {k1M, k16M}) b->Args({act, n});
  }
  b->Args({0, 128 * 400});          // MLP-VAE hidden ReLU
  b->Args({0, 128 * 64 * 32 * 32});  // DCGAN-64 G ReLU
  b->Args({1, 128 * 64 * 32 * 32});  // DCGAN-64 D LeakyReLU
  b->Args({2, 128 * 3 * 64 * 64});   // DCGAN-64 G tanh output
  b->Args({3, 128 * 784});           // MLP-VAE decoder output
  b->UseManualTime();
}

void BM_ActivationForward(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const auto a = static_cast<Activation>(state.range(0));
  const int64_t n = state.range(1);
  DeviceArray x(n, 1, -4.0f, 4.0f), y(n);
  time_gpu(state, [&] { kcu::activation_forward(a, 0.2f, x.p, y.p, n, kc::compute_stream()); });
  report_bandwidth(state, f4(2 * n));
}
BENCHMARK(BM_ActivationForward)->Apply(ActivationShapes);

void BM_ActivationBackward(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const auto a = static_cast<Activation>(state.range(0));
  const int64_t n = state.range(1);
  DeviceArray x(n, 1, -4.0f, 4.0f), y(n), gy(n, 2), gx(n);
  kcu::activation_forward(a, 0.2f, x.p, y.p, n, kc::compute_stream());
  time_gpu(state, [&] { kcu::activation_backward(a, 0.2f, x.p, y.p, gy.p, gx.p, n, kc::compute_stream()); });
  report_bandwidth(state, f4(3 * n));
}
BENCHMARK(BM_ActivationBackward)->Apply(ActivationShapes);

// Misaligned pointers (one float off): the scalar path, at 16M.
void BM_ActivationForwardUnaligned(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = state.range(0);
  DeviceArray x(n + 1, 1, -4.0f, 4.0f), y(n + 1);
  time_gpu(state, [&] { kcu::activation_forward(Activation::LeakyReLU, 0.2f, x.p + 1, y.p + 1, n, kc::compute_stream()); });
  report_bandwidth(state, f4(2 * n));
}
BENCHMARK(BM_ActivationForwardUnaligned)->Arg(k16M)->UseManualTime();

// ---- element-wise ------------------------------------------------------------------------------
// range(0): the op (below); range(1): n.
enum MapOp { kFill, kCopy, kAdd, kAddInPlace, kMul, kScale, kAddScalar, kAxpy, kExp, kLog, kMapOps };
const char* const kMapNames[kMapOps] = {"fill", "copy", "add", "add_inplace", "mul", "scale", "add_scalar",
                                        "axpy", "exp", "log"};
// Floats moved per element.
const int kMapFloats[kMapOps] = {1, 2, 3, 3, 3, 2, 2, 3, 2, 2};

void MapShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"op", "n"});
  for (int op = 0; op < kMapOps; ++op) {
    for (int64_t n : {int64_t{128 * 784}, k1M, k16M}) b->Args({op, n});
  }
  b->UseManualTime();
}

void BM_Elementwise(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const auto op = static_cast<MapOp>(state.range(0));
  const int64_t n = state.range(1);
  state.SetLabel(kMapNames[op]);
  DeviceArray a(n, 1, 0.1f, 2.0f), b(n, 2, 0.1f, 2.0f), y(n, 3);
  const kc::Stream s = kc::compute_stream();
  time_gpu(state, [&] {
    switch (op) {
      case kFill: kcu::fill(y.p, 0.5f, n, s); break;
      case kCopy: kcu::copy(a.p, y.p, n, s); break;
      case kAdd: kcu::add(a.p, b.p, y.p, n, s); break;
      case kAddInPlace: kcu::add(y.p, b.p, y.p, n, s); break;  // gradient accumulation
      case kMul: kcu::mul(a.p, b.p, y.p, n, s); break;
      case kScale: kcu::scale(a.p, 0.5f, y.p, n, s); break;
      case kAddScalar: kcu::add_scalar(a.p, 0.5f, y.p, n, s); break;
      case kAxpy: kcu::axpy(1e-3f, a.p, y.p, n, s); break;
      case kExp: kcu::exp(a.p, y.p, n, s); break;
      case kLog: kcu::log(a.p, y.p, n, s); break;
      case kMapOps: break;
    }
  });
  report_bandwidth(state, f4(kMapFloats[op] * n));
}
BENCHMARK(BM_Elementwise)->Apply(MapShapes);

// copy_rows (outer, len, dst_stride): concatenation along dim 1.
void BM_CopyRows(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t outer = state.range(0), len = state.range(1), dst_stride = state.range(2);
  DeviceArray src(outer * len, 1), dst(outer * dst_stride, 2);
  time_gpu(state, [&] {
    kcu::copy_rows(src.p, len, 0, dst.p, dst_stride, dst_stride - len, outer, len, kc::compute_stream());
  });
  report_bandwidth(state, f4(2 * outer * len));
}
BENCHMARK(BM_CopyRows)
    ->ArgNames({"outer", "len", "dst_stride"})
    ->Args({128, 10, 110})              // cGAN-28 G: z (128, 100) ++ label embedding (128, 10)
    ->Args({128, 784, 1568})            // cGAN-28 D: image ++ label channel
    ->Args({128, 64 * 32 * 32, 2 * 64 * 32 * 32})  // a channel concatenation of two 4M-float maps
    ->Args({128, 7, 111})               // odd rows: the scalar path
    ->UseManualTime();

void BM_Transpose2d(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t rows = state.range(0), cols = state.range(1);
  DeviceArray x(rows * cols, 1), y(rows * cols);
  time_gpu(state, [&] { kcu::transpose2d(x.p, y.p, rows, cols, kc::compute_stream()); });
  report_bandwidth(state, f4(2 * rows * cols));
}
BENCHMARK(BM_Transpose2d)
    ->ArgNames({"rows", "cols"})
    ->Args({400, 784})  // MLP-VAE first weight
    ->Args({1024, 1024})
    ->Args({4096, 4096})
    ->Args({8192, 128})
    ->UseManualTime();

// ---- sums --------------------------------------------------------------------------------------
void BM_SumAll(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = state.range(0);
  DeviceArray x(n, 1), out(1);
  time_gpu(state, [&] { kcu::sum_all(x.p, n, out.p, kc::compute_stream()); });
  report_bandwidth(state, f4(n + 1));
}
BENCHMARK(BM_SumAll)->Arg(128 * 784)->Arg(k1M)->Arg(k16M)->UseManualTime();

void DimShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"outer", "mid", "inner"});
  b->Args({1, 128, 400});         // Linear bias gradient (MLP-VAE hidden)
  b->Args({1, 128, 8192});        // GAN-128 G first Linear bias gradient
  b->Args({128, 784, 1});         // per-image sums
  b->Args({128, 64, 1024});       // DCGAN-64 (N, C, HW) summed over C
  b->Args({64, 64, 256});
  b->Args({1, 32768, 512});       // 16M floats summed over the long dimension
  b->Args({1024, 16384, 1});      // 16M floats, long rows (chunked)
  b->UseManualTime();
}

void BM_SumDim(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t outer = state.range(0), mid = state.range(1), inner = state.range(2);
  DeviceArray x(outer * mid * inner, 1), y(outer * inner);
  time_gpu(state, [&] { kcu::sum_dim(x.p, y.p, outer, mid, inner, kc::compute_stream()); });
  report_bandwidth(state, f4(outer * mid * inner + outer * inner));
}
BENCHMARK(BM_SumDim)->Apply(DimShapes);

void BM_BroadcastDim(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t outer = state.range(0), mid = state.range(1), inner = state.range(2);
  DeviceArray gy(outer * inner, 1), gx(outer * mid * inner);
  time_gpu(state, [&] { kcu::broadcast_dim(gy.p, gx.p, outer, mid, inner, kc::compute_stream()); });
  report_bandwidth(state, f4(outer * mid * inner + outer * inner));
}
BENCHMARK(BM_BroadcastDim)->Apply(DimShapes);

// ---- random numbers ----------------------------------------------------------------------------
void BM_FillUniform(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = state.range(0);
  DeviceArray y(n);
  PhiloxStream st{42, 0, 0};
  time_gpu(state, [&] {
    kcu::fill_uniform(y.p, n, -1.0f, 1.0f, st, kc::compute_stream());
    st.offset += static_cast<uint64_t>((n + 3) / 4 * 4);  // a new part of the stream each call
  });
  report_bandwidth(state, f4(n));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * n);
}
BENCHMARK(BM_FillUniform)->Arg(128 * 100)->Arg(k1M)->Arg(k16M)->UseManualTime();

void BM_FillNormal(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = state.range(0);
  DeviceArray y(n);
  PhiloxStream st{42, 0, 0};
  time_gpu(state, [&] {
    kcu::fill_normal(y.p, n, 0.0f, 1.0f, st, kc::compute_stream());
    st.offset += static_cast<uint64_t>((n + 3) / 4 * 4);
  });
  report_bandwidth(state, f4(n));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * n);
}
BENCHMARK(BM_FillNormal)->Arg(128 * 100)->Arg(k1M)->Arg(k16M)->UseManualTime();

// The vendor baseline: cuRAND's host API, Philox4_32_10, normals into the same kind of buffer.
void BM_FillNormalCurandHostApi(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = state.range(0);
  DeviceArray y(n);
  curandGenerator_t gen = nullptr;
  if (curandCreateGenerator(&gen, CURAND_RNG_PSEUDO_PHILOX4_32_10) != CURAND_STATUS_SUCCESS) {
    state.SkipWithError("curandCreateGenerator failed");
    return;
  }
  curandSetStream(gen, kc::compute_stream());
  curandSetPseudoRandomGeneratorSeed(gen, 42);
  time_gpu(state, [&] { curandGenerateNormal(gen, y.p, static_cast<size_t>(n), 0.0f, 1.0f); });
  curandDestroyGenerator(gen);
  report_bandwidth(state, f4(n));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * n);
}
BENCHMARK(BM_FillNormalCurandHostApi)->Arg(128 * 100)->Arg(k1M)->Arg(k16M)->UseManualTime();

void BM_PhiloxRaw(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = state.range(0);
  auto* out = static_cast<uint32_t*>(kc::malloc_device(static_cast<size_t>(n) * sizeof(uint32_t)));
  const PhiloxStream st{42, 0, 1};
  time_gpu(state, [&] { kcu::philox_raw(out, n, st, kc::compute_stream()); });
  kc::free_device(out);
  report_bandwidth(state, f4(n));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * n);
}
BENCHMARK(BM_PhiloxRaw)->Arg(k1M)->UseManualTime();

// range(1): the stream offset (1: the lane-by-lane path).
void BM_DropoutForward(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = state.range(0);
  DeviceArray x(n, 1), y(n);
  const PhiloxStream st{7, 0, static_cast<uint64_t>(state.range(1))};
  time_gpu(state, [&] { kcu::dropout_forward(x.p, y.p, n, 0.4f, st, kc::compute_stream()); });
  report_bandwidth(state, f4(2 * n));
}
BENCHMARK(BM_DropoutForward)
    ->ArgNames({"n", "offset"})
    ->Args({32 * 8192, 0})  // GAN-128 D: Dropout(0.4) over the flattened (32, 8192)
    ->Args({k1M, 0})
    ->Args({k16M, 0})
    ->Args({k16M, 1})
    ->UseManualTime();

// ---- padding -----------------------------------------------------------------------------------
// (N, C, H, W, top, bottom, left, right)
void PadShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "C", "H", "W", "t", "b", "l", "r"});
  b->Args({32, 128, 128, 128, 3, 4, 3, 4});  // GAN-128 G before the 8x8 convolution
  b->Args({32, 128, 128, 128, 0, 1, 0, 1});  // GAN-128 D, the first stride-2 convolution
  b->Args({32, 128, 64, 64, 0, 1, 0, 1});
  b->Args({32, 128, 16, 16, 0, 1, 0, 1});
  b->UseManualTime();
}

kernels::Pad2dShape pad_shape(const benchmark::State& state) {
  kernels::Pad2dShape s;
  s.N = state.range(0), s.C = state.range(1), s.H = state.range(2), s.W = state.range(3);
  s.top = state.range(4), s.bottom = state.range(5), s.left = state.range(6), s.right = state.range(7);
  return s;
}

void BM_Pad2dForward(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const kernels::Pad2dShape s = pad_shape(state);
  const int64_t nx = s.N * s.C * s.H * s.W, ny = s.N * s.C * s.P() * s.Q();
  DeviceArray x(nx, 1), y(ny);
  time_gpu(state, [&] { kcu::pad2d_forward(s, x.p, y.p, kc::compute_stream()); });
  report_bandwidth(state, f4(nx + ny));
}
BENCHMARK(BM_Pad2dForward)->Apply(PadShapes);

void BM_Pad2dBackward(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const kernels::Pad2dShape s = pad_shape(state);
  const int64_t nx = s.N * s.C * s.H * s.W, ny = s.N * s.C * s.P() * s.Q();
  DeviceArray gy(ny, 1), gx(nx);
  time_gpu(state, [&] { kcu::pad2d_backward(s, gy.p, gx.p, kc::compute_stream()); });
  report_bandwidth(state, f4(2 * nx));
}
BENCHMARK(BM_Pad2dBackward)->Apply(PadShapes);

// ---- embedding ---------------------------------------------------------------------------------
// (N, num, dim); indices uniform over the table.
struct DeviceIndices {
  DeviceIndices(int64_t N, int64_t num) {
    std::mt19937 g(5);
    std::vector<int32_t> h(static_cast<size_t>(N));
    for (auto& i : h) i = static_cast<int32_t>(g() % static_cast<uint32_t>(num));
    p = static_cast<int32_t*>(kc::malloc_device(h.size() * sizeof(int32_t)));
    kc::memcpy_host_to_device(p, h.data(), h.size() * sizeof(int32_t));
  }
  ~DeviceIndices() { kc::free_device(p); }
  DeviceIndices(const DeviceIndices&) = delete;
  DeviceIndices& operator=(const DeviceIndices&) = delete;
  int32_t* p = nullptr;
};

void EmbeddingShapes(benchmark::internal::Benchmark* b) {
  b->ArgNames({"N", "num", "dim"});
  b->Args({128, 10, 10});     // cGAN-28 G label embedding
  b->Args({128, 10, 784});    // cGAN-28 D label channel
  b->Args({4096, 1000, 256});
  b->UseManualTime();
}

void BM_EmbeddingForward(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t N = state.range(0), num = state.range(1), dim = state.range(2);
  DeviceArray table(num * dim, 1), y(N * dim);
  DeviceIndices idx(N, num);
  time_gpu(state, [&] { kcu::embedding_forward(table.p, idx.p, y.p, N, num, dim, kc::compute_stream()); });
  report_bandwidth(state, f4(2 * N * dim + N));
}
BENCHMARK(BM_EmbeddingForward)->Apply(EmbeddingShapes);

void BM_EmbeddingBackward(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t N = state.range(0), num = state.range(1), dim = state.range(2);
  DeviceArray gy(N * dim, 1), gt(num * dim);
  DeviceIndices idx(N, num);
  time_gpu(state, [&] { kcu::embedding_backward(gy.p, idx.p, gt.p, N, num, dim, kc::compute_stream()); });
  report_bandwidth(state, f4(N * dim + num * dim + N));
}
BENCHMARK(BM_EmbeddingBackward)->Apply(EmbeddingShapes);

// ---- VAE ---------------------------------------------------------------------------------------
void BM_ReparamForwardBackward(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = state.range(0);
  DeviceArray mu(n, 1), lv(n, 2), z(n), gz(n, 3), gmu(n), glv(n);
  const PhiloxStream st{11, 0, 0};
  time_gpu(state, [&] {
    kcu::reparam_forward(mu.p, lv.p, z.p, n, st, kc::compute_stream());
    kcu::reparam_backward(lv.p, gz.p, gmu.p, glv.p, n, st, kc::compute_stream());
  });
  report_bandwidth(state, f4(3 * n + 4 * n));  // forward: mu, logvar, z; backward: logvar, gz, gmu, glogvar
}
BENCHMARK(BM_ReparamForwardBackward)->Arg(128 * 20)->Arg(k1M)->Arg(k16M)->UseManualTime();

// range(0) = batch, range(1) = latent: (128, 20) is the MLP-VAE, (128, 128) the conv VAE.
void BM_KlNormalFused(benchmark::State& state) {
  if (!require_gpu(state)) return;
  const int64_t n = state.range(0) * state.range(1);
  DeviceArray mu(n, 1), lv(n, 2), gmu(n), glv(n), loss(1);
  time_gpu(state, [&] {
    kcu::kl_normal_fused(mu.p, lv.p, n, 1.0f / static_cast<float>(state.range(0)), loss.p, gmu.p, glv.p,
                         kc::compute_stream());
  });
  report_bandwidth(state, f4(4 * n + 1));
}
BENCHMARK(BM_KlNormalFused)
    ->ArgNames({"batch", "latent"})
    ->Args({128, 20})
    ->Args({128, 128})
    ->Args({1024, 1024})
    ->Args({16384, 1024})
    ->UseManualTime();

}  // namespace
}  // namespace ll::bench
