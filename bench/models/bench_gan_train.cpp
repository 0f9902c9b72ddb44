// bench_gan_train.cpp: training throughput of DCGAN-28 (models/gan.h; ngf = ndf = 64, nz = 100, the
// size `latentlab train dcgan` uses) in real images per second: whole GAN steps of
// models::gan_train_step (D on real and fake, D's Adam step, G through the updated D, G's Adam
// step) at batch 128 on Fashion-MNIST batches scaled to [-1, 1] (random images in [-1, 1] when the
// data set is not installed: the speed does not depend on the values). The noise is drawn inside
// the timed loop, as a training run draws it. bench/gan_vs_pytorch.sh runs this beside the PyTorch
// twin (bench/pytorch/dcgan28.py bench) and prints the ratio; bench/conv_vs_pytorch.sh adds the
// peak RSS of each.
//
// BM_Dcgan64TrainStep: pytorch/examples' DCGAN-64 (three channels, 64x64) at batch 128 on the GPU,
// random images in [-1, 1] already on the device; scripts/gpu-check.sh (phase `compare`) runs it
// beside bench/pytorch/dcgan64_gpu.py (PyTorch with cuDNN) on the same GPU. Without a usable GPU it
// reports the reason and times nothing. Each step ends by reading the losses back (a synchronization),
// so the time is the GPU's. --conv-backend is taken from $LATENTLAB_CONV_BACKEND (native or cudnn).
//
// BM_Dcgan64TrainStepCpu: the same DCGAN-64 (three channels, 64x64, ngf = ndf = 64, nz = 100) on the
// CPU at batch 64, the same GAN step as BM_Dcgan28TrainStep, on 8 batches of random images in
// [-1, 1] made once beforehand (the speed does not depend on the values; 8 x 64 x 3 x 64 x 64 floats,
// 25 MiB) after one untimed warm-up step; the noise is drawn inside the timed loop.
// bench/conv_vs_pytorch.sh runs it beside bench/pytorch/dcgan64.py bench, which holds the same data.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "engine/device.h"
#include "kernels/conv2d.h"
#include "engine/ops/ops.h"
#include "models/gan.h"

namespace {

using namespace ll;

// Made once per process and kept: Google Benchmark calls a benchmark function once per trial run,
// and reading the data set again in a later run would put it on top of the earlier run's tensors,
// which the allocator keeps for reuse (engine/allocator.h), so the process's peak RSS
// (bench/conv_vs_pytorch.sh) would count the data twice. The map is never destroyed (no question of
// its order at exit against the allocator's).
const std::vector<Tensor>& gan_batches(int64_t batch, int64_t count) {
  static auto& made = *new std::map<std::pair<int64_t, int64_t>, std::vector<Tensor>>;
  if (const auto it = made.find({batch, count}); it != made.end()) return it->second;
  std::vector<Tensor>& out = made[{batch, count}];
  try {
    const data::Dataset d = data::load_dataset("fashion-mnist", data::Split::Train);
    const auto order = data::shuffled_indices(d.n, 1, 0);
    for (int64_t b = 0; b < count; ++b) {
      std::vector<int64_t> idx(order.begin() + b * batch, order.begin() + (b + 1) * batch);
      out.push_back(data::gather_images(d, idx, data::Scale::Symmetric));
    }
  } catch (const data::DatasetNotFound&) {
    Generator g(1);
    for (int64_t b = 0; b < count; ++b) out.push_back(add_scalar(scale(rand({batch, 1, 28, 28}, g), 2.0f), -1.0f));  // U(0, 1] -> (-1, 1]
  }
  return out;
}

void BM_Dcgan28TrainStep(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const std::vector<Tensor>& batches = gan_batches(batch, 16);
  models::GanConfig config;  // dcgan28, one channel, nz 100, ngf = ndf = 64
  Generator init(1), noise(2);
  models::GanGenerator g(config, init);
  models::GanDiscriminator d(config, init);
  optim::Adam opt_g(g.parameters(), {.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999});
  optim::Adam opt_d(d.parameters(), {.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999});
  size_t i = 0;
  for (auto _ : state) {
    const Tensor z = randn({batch, config.nz}, noise);
    const models::GanStepResult r = models::gan_train_step(g, d, opt_g, opt_d, batches[i++ % batches.size()], {}, z);
    benchmark::DoNotOptimize(r.loss_g);
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["img_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Dcgan28TrainStep)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Dcgan64TrainStep(benchmark::State& state) {
  std::string why;
  if (!cuda_available(&why) || !cuda_ops_built()) {
    state.SkipWithError(("no GPU: " + (why.empty() ? std::string("this build has no CUDA ops") : why)).c_str());
    return;
  }
#ifdef LATENTLAB_HAS_CUDA
  if (const char* b = std::getenv("LATENTLAB_CONV_BACKEND")) {
    kernels::cuda::set_conv_backend(kernels::cuda::parse_conv_backend(b));
  }
#endif
  const int64_t batch = state.range(0);
  models::GanConfig config;
  config.arch = models::GanArch::DCGAN64;
  config.channels = 3;
  Generator init(1), noise(2), data(3);
  models::GanGenerator g(config, init);
  models::GanDiscriminator d(config, init);
  g.to(Device::CUDA);
  d.to(Device::CUDA);
  optim::Adam opt_g(g.parameters(), {.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999});
  optim::Adam opt_d(d.parameters(), {.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999});
  std::vector<Tensor> batches;
  for (int i = 0; i < 8; ++i) {
    batches.push_back(add_scalar(scale(rand({batch, 3, 64, 64}, data, Device::CUDA), 2.0f), -1.0f));
  }
  size_t i = 0;
  for (int w = 0; w < 3; ++w) {  // warm-up: the caching allocator fills, cuDNN picks its algorithms
    (void)models::gan_train_step(g, d, opt_g, opt_d, batches[i++ % batches.size()], {},
                                 randn({batch, config.nz}, noise, Device::CUDA));
  }
  for (auto _ : state) {
    const Tensor z = randn({batch, config.nz}, noise, Device::CUDA);
    const models::GanStepResult r = models::gan_train_step(g, d, opt_g, opt_d, batches[i++ % batches.size()], {}, z);
    benchmark::DoNotOptimize(r.loss_g);
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["img_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Dcgan64TrainStep)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Dcgan64TrainStepCpu(benchmark::State& state) {
  const int64_t batch = state.range(0);
  models::GanConfig config;
  config.arch = models::GanArch::DCGAN64;
  config.channels = 3;
  Generator init(1), noise(2);
  models::GanGenerator g(config, init);
  models::GanDiscriminator d(config, init);
  optim::Adam opt_g(g.parameters(), {.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999});
  optim::Adam opt_d(d.parameters(), {.lr = 2e-4, .beta1 = 0.5, .beta2 = 0.999});
  static auto& made = *new std::map<int64_t, std::vector<Tensor>>;  // once per process, as gan_batches
  std::vector<Tensor>& batches = made[batch];
  if (batches.empty()) {
    Generator data(3);
    for (int b = 0; b < 8; ++b) batches.push_back(add_scalar(scale(rand({batch, 3, 64, 64}, data), 2.0f), -1.0f));
  }
  size_t i = 0;
  // One untimed step (the PyTorch twin warms up too): a step takes seconds here, so Google
  // Benchmark times only a handful of them and a cold first one would weigh on the figure.
  (void)models::gan_train_step(g, d, opt_g, opt_d, batches[i++ % batches.size()], {}, randn({batch, config.nz}, noise));
  for (auto _ : state) {
    const Tensor z = randn({batch, config.nz}, noise);
    const models::GanStepResult r = models::gan_train_step(g, d, opt_g, opt_d, batches[i++ % batches.size()], {}, z);
    benchmark::DoNotOptimize(r.loss_g);
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["img_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Dcgan64TrainStepCpu)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
