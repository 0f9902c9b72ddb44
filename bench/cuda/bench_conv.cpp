// bench_conv.cpp: every conv layer of DCGAN-64 (batch 128) and of the conv VAE (batch 128), and
// layers with small output maps: forward, backward data and backward weight, the native backend
// (im2col + cuBLAS) beside cuDNN on the same inputs (same seeds), FP32 (allow_tf32 off) unless the
// name says tf32.
//
//   ./build/bench/bench_cuda_conv --benchmark_filter='dcgan64_D2/'
//
// Names: conv/<layer>/<op>/<backend>, and conv_fold/<shape>/<per_image|folded> for the two GEMM
// shapes of a pass over small output maps (BM_FoldGemm). FLOPs = 2 * multiply-adds:
// 2 N K P Q C R S for a conv with output (N, K, P, Q); for a transposed conv the count of its
// adjoint conv, 2 N C H W K R S with input (N, C, H, W) (every input pixel meets every kernel tap
// once), the same for all three ops.
// Counters: TFLOP/s (GPU time from CUDA events, manual time).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "bench/cuda/cuda_bench.h"
#include "kernels/conv2d.h"
#include "kernels/conv_transpose2d.h"
#include "kernels/gemm.h"

namespace {

using ll::bench::DeviceArray;
using ll::kernels::Conv2dShape;
using ll::kernels::ConvTranspose2dShape;
namespace kc = ll::kernels::cuda;

struct Layer {
  std::string name;
  bool transpose;
  int64_t N, C, H, K, R, stride, pad;  // square images and kernels
};

// models/gan.cpp (DCGAN-64: nz 100, ngf = ndf = 64, RGB 64x64) and models/vae.cpp (conv VAE,
// w = 32, 1x28x28), batch 128.
const std::vector<Layer>& layers() {
  static const std::vector<Layer> v = {
      {"dcgan64_G1", true, 128, 100, 1, 512, 4, 1, 0},   // (100, 1, 1) -> (512, 4, 4)
      {"dcgan64_G2", true, 128, 512, 4, 256, 4, 2, 1},   // -> (256, 8, 8)
      {"dcgan64_G3", true, 128, 256, 8, 128, 4, 2, 1},   // -> (128, 16, 16)
      {"dcgan64_G4", true, 128, 128, 16, 64, 4, 2, 1},   // -> (64, 32, 32)
      {"dcgan64_G5", true, 128, 64, 32, 3, 4, 2, 1},     // -> (3, 64, 64)
      {"dcgan64_D1", false, 128, 3, 64, 64, 4, 2, 1},    // (3, 64, 64) -> (64, 32, 32)
      {"dcgan64_D2", false, 128, 64, 32, 128, 4, 2, 1},  // -> (128, 16, 16)
      {"dcgan64_D3", false, 128, 128, 16, 256, 4, 2, 1}, // -> (256, 8, 8)
      {"dcgan64_D4", false, 128, 256, 8, 512, 4, 2, 1},  // -> (512, 4, 4)
      {"dcgan64_D5", false, 128, 512, 4, 1, 4, 1, 0},    // -> (1, 1, 1)
      {"vae_enc1", false, 128, 1, 28, 32, 4, 2, 1},      // (1, 28, 28) -> (32, 14, 14)
      {"vae_enc2", false, 128, 32, 14, 64, 4, 2, 1},     // -> (64, 7, 7)
      {"vae_dec1", true, 128, 64, 7, 32, 4, 2, 1},       // (64, 7, 7) -> (32, 14, 14)
      {"vae_dec2", true, 128, 32, 14, 1, 4, 2, 1},       // -> (1, 28, 28)
      // Small output maps (conv2d.cu folds the batch into the GEMMs for P Q <= 64; P Q = 1 with
      // the kernel covering the image is one GEMM over the batch): larger batches of the DCGAN-64
      // layers at the ends, a 2x2 output, and 3x3 and 1x1 convs on 4x4 maps.
      {"dcgan64_D4_batch512", false, 512, 256, 8, 512, 4, 2, 1},  // -> (512, 4, 4): P Q = 16
      {"dcgan64_D5_batch512", false, 512, 512, 4, 1, 4, 1, 0},    // -> (1, 1, 1)
      {"dcgan64_G1_batch512", true, 512, 100, 1, 512, 4, 1, 0},   // 1x1 input
      {"dcgan64_G2_batch512", true, 512, 512, 4, 256, 4, 2, 1},   // 4x4 input: P Q = 16
      {"small_2x2_out", false, 128, 256, 4, 256, 4, 2, 1},        // -> (256, 2, 2): P Q = 4
      {"small_3x3_on_4x4", false, 128, 512, 4, 512, 3, 1, 1},     // -> (512, 4, 4)
      {"small_1x1_on_4x4", false, 128, 512, 4, 512, 1, 1, 0},     // pointwise on 4x4 maps
  };
  return v;
}

Conv2dShape conv_shape(const Layer& l) {
  Conv2dShape s;
  s.N = l.N, s.C = l.C, s.H = s.W = l.H, s.K = l.K, s.R = s.S = l.R;
  s.stride_h = s.stride_w = l.stride, s.pad_h = s.pad_w = l.pad;
  return s;
}

ConvTranspose2dShape convt_shape(const Layer& l) {
  ConvTranspose2dShape s;
  s.N = l.N, s.C = l.C, s.H = s.W = l.H, s.K = l.K, s.R = s.S = l.R;
  s.stride_h = s.stride_w = l.stride, s.pad_h = s.pad_w = l.pad;
  return s;
}

int64_t out_size(const Layer& l) {
  return l.transpose ? convt_shape(l).P() : conv_shape(l).P();
}

double flops(const Layer& l) {
  const double macs = l.transpose
                          ? static_cast<double>(l.N) * l.C * l.H * l.H * l.K * l.R * l.R
                          : static_cast<double>(l.N) * l.K * out_size(l) * out_size(l) * l.C * l.R * l.R;
  return 2.0 * macs;
}

enum class Op { Forward, BackwardData, BackwardWeight };
const char* op_name(Op op) {
  return op == Op::Forward ? "forward" : op == Op::BackwardData ? "backward_data" : "backward_weight";
}

void BM_Conv(benchmark::State& state, const Layer& l, Op op, kc::ConvBackend backend, bool tf32) {
  if (!ll::bench::require_gpu(state)) return;
  const int64_t P = out_size(l);
  const int64_t x_n = l.N * l.C * l.H * l.H, y_n = l.N * l.K * P * P, w_n = l.K * l.C * l.R * l.R;
  // The same seeds for both backends: the same inputs.
  DeviceArray x(x_n, 1), w(w_n, 2, -0.1f, 0.1f), gy(y_n, 3), y(y_n, 4), gx(x_n, 5), gw(w_n, 6);
  const bool native = backend == kc::ConvBackend::Native;
  const bool saved_tf32 = kc::allow_tf32();
  kc::set_allow_tf32(tf32);
  const kc::Stream st = kc::compute_stream();
  auto work = [&] {
    if (l.transpose) {
      const ConvTranspose2dShape s = convt_shape(l);
      switch (op) {
        case Op::Forward:
          native ? kc::conv_transpose2d_forward_native(s, x.p, w.p, nullptr, y.p, st)
                 : kc::conv_transpose2d_forward_cudnn(s, x.p, w.p, nullptr, y.p, st);
          break;
        case Op::BackwardData:
          native ? kc::conv_transpose2d_backward_data_native(s, gy.p, w.p, gx.p, st)
                 : kc::conv_transpose2d_backward_data_cudnn(s, gy.p, w.p, gx.p, st);
          break;
        case Op::BackwardWeight:
          native ? kc::conv_transpose2d_backward_weight_native(s, x.p, gy.p, gw.p, st)
                 : kc::conv_transpose2d_backward_weight_cudnn(s, x.p, gy.p, gw.p, st);
          break;
      }
    } else {
      const Conv2dShape s = conv_shape(l);
      switch (op) {
        case Op::Forward:
          native ? kc::conv2d_forward_native(s, x.p, w.p, nullptr, y.p, st)
                 : kc::conv2d_forward_cudnn(s, x.p, w.p, nullptr, y.p, st);
          break;
        case Op::BackwardData:
          native ? kc::conv2d_backward_data_native(s, gy.p, w.p, gx.p, st)
                 : kc::conv2d_backward_data_cudnn(s, gy.p, w.p, gx.p, st);
          break;
        case Op::BackwardWeight:
          native ? kc::conv2d_backward_weight_native(s, x.p, gy.p, gw.p, st)
                 : kc::conv2d_backward_weight_cudnn(s, x.p, gy.p, gw.p, st);
          break;
      }
    }
  };
  try {
    ll::bench::time_gpu(state, work);
  } catch (const std::exception& e) {
    kc::set_allow_tf32(saved_tf32);
    state.SkipWithError(e.what());
    return;
  }
  kc::set_allow_tf32(saved_tf32);
  ll::bench::report_flops(state, flops(l));
  state.counters["GFLOP"] = flops(l) * 1e-9;
}

// The two GEMM shapes of a forward pass over a batch of small maps, without the im2col around
// them (the operands are random): per image y_n (M, PQ) = w (M, Kd) col_n (Kd, PQ) as one
// strided-batched call ("per_image", what conv2d.cu did for every P Q > 1), and the folded
// y (M, N PQ) = w (M, Kd) col (Kd, N PQ), one GEMM ("folded", what it does for P Q <= 64). The
// backward data pass has the same shapes with M = C R S and Kd = K. For choosing kFoldMaxPQ.
void BM_FoldGemm(benchmark::State& state, int64_t M, int64_t Kd, int64_t PQ, int64_t N,
                 bool folded) {
  if (!ll::bench::require_gpu(state)) return;
  DeviceArray w(M * Kd, 1, -0.1f, 0.1f), col(Kd * N * PQ, 2), y(M * N * PQ, 3);
  const bool saved_tf32 = kc::allow_tf32();
  kc::set_allow_tf32(false);
  const kc::Stream st = kc::compute_stream();
  try {
    ll::bench::time_gpu(state, [&] {
      if (folded) {
        kc::gemm(false, false, M, N * PQ, Kd, 1.0f, w.p, col.p, 0.0f, y.p, st);
      } else {
        kc::gemm_strided_batched(false, false, M, PQ, Kd, 1.0f, w.p, 0, col.p, Kd * PQ, 0.0f, y.p,
                                 M * PQ, N, st);
      }
    });
  } catch (const std::exception& e) {
    kc::set_allow_tf32(saved_tf32);
    state.SkipWithError(e.what());
    return;
  }
  kc::set_allow_tf32(saved_tf32);
  ll::bench::report_flops(state, 2.0 * static_cast<double>(M) * Kd * PQ * N);
}

// Registered at static initialization, before benchmark_main's main runs.
const bool registered = [] {
  for (const Layer& l : layers()) {
    for (const Op op : {Op::Forward, Op::BackwardData, Op::BackwardWeight}) {
      for (const auto backend : {kc::ConvBackend::Native, kc::ConvBackend::Cudnn}) {
        const std::string name =
            "conv/" + l.name + "/" + op_name(op) + "/" + kc::conv_backend_name(backend);
        benchmark::RegisterBenchmark(name.c_str(), BM_Conv, l, op, backend, false)
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  // TF32 beside FP32 on two compute-heavy layers, both backends.
  for (const char* layer : {"dcgan64_G4", "dcgan64_D2"}) {
    for (const Layer& l : layers()) {
      if (l.name != layer) continue;
      for (const auto backend : {kc::ConvBackend::Native, kc::ConvBackend::Cudnn}) {
        const std::string name =
            "conv/" + l.name + "/forward/" + kc::conv_backend_name(backend) + "_tf32";
        benchmark::RegisterBenchmark(name.c_str(), BM_Conv, l, Op::Forward, backend, true)
            ->UseManualTime()
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  // Per-image against folded GEMMs at batch 128: (M, Kd, PQ) of DCGAN-64 D4 (512, 4096, 16), D3
  // (256, 2048, 64), D2 (128, 1024, 256), G2's backward data (4096, 512, 16) and a 2x2 output.
  struct FoldShape {
    const char* name;
    int64_t M, Kd, PQ;
  };
  const FoldShape fold_shapes[] = {{"d4_pq16", 512, 4096, 16},   {"d3_pq64", 256, 2048, 64},
                                   {"d2_pq256", 128, 1024, 256}, {"g2_data_pq16", 4096, 512, 16},
                                   {"out2x2_pq4", 256, 4096, 4}};
  for (const FoldShape& f : fold_shapes) {
    for (const bool folded : {false, true}) {
      const std::string name =
          std::string("conv_fold/") + f.name + "/" + (folded ? "folded" : "per_image");
      benchmark::RegisterBenchmark(name.c_str(), BM_FoldGemm, f.M, f.Kd, f.PQ, int64_t{128},
                                   folded)
          ->UseManualTime()
          ->Unit(benchmark::kMicrosecond);
    }
  }
  return true;
}();

}  // namespace
