// bench_vae_train.cpp: training throughput of the MLP VAE (the pytorch/examples recipe: batch 128,
// Adam 1e-3, 784-400-20) in images per second: forward, backward and Adam step on Fashion-MNIST
// batches (random images in [0, 1] when the data set is not installed: the speed does not depend on
// the values). bench/vae_vs_pytorch.sh runs this beside the PyTorch twin and prints the ratio.
//
// BM_VaeConvTrainStep: the same for the convolutional VAE with the settings `latentlab train vae
// --arch conv` uses on Fashion-MNIST (models/vae.h's Arch::Conv: conv_channels 32, latent_dim 20,
// beta 1, BCE; Adam 1e-3; batch 128). bench/conv_vs_pytorch.sh runs it beside
// bench/pytorch/vae_conv.py bench.
//
// Data held: both benchmarks read the Fashion-MNIST training set during setup (60000 images of one
// byte per pixel, 47 MB), keep 16 batches as floats (16 x 128 x 784 x 4 bytes, 6.4 MB) and drop the
// rest. vae_conv.py does the same, so that the peak RSS that conv_vs_pytorch.sh reports compares
// like with like (vae_mlp.py keeps the whole set as floats, 188 MB, and all its batches).
#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "engine/device.h"
#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
#include "models/vae.h"

namespace {

using namespace ll;

// Made once per process and kept: Google Benchmark calls a benchmark function once per trial run,
// and reading the data set again in a later run would put it on top of the earlier run's tensors,
// which the allocator keeps for reuse (engine/allocator.h), so the process's peak RSS
// (bench/conv_vs_pytorch.sh) would count the data twice. The map is never destroyed (no question of
// its order at exit against the allocator's).
const std::vector<Tensor>& training_batches(int64_t batch, int64_t count) {
  static auto& made = *new std::map<std::pair<int64_t, int64_t>, std::vector<Tensor>>;
  if (const auto it = made.find({batch, count}); it != made.end()) return it->second;
  std::vector<Tensor>& out = made[{batch, count}];
  try {
    const data::Dataset d = data::load_dataset("fashion-mnist", data::Split::Train);
    const auto order = data::shuffled_indices(d.n, 1, 0);
    for (int64_t b = 0; b < count; ++b) {
      std::vector<int64_t> idx(order.begin() + b * batch, order.begin() + (b + 1) * batch);
      out.push_back(data::gather_images(d, idx, data::Scale::Unit));
    }
  } catch (const data::DatasetNotFound&) {
    Generator g(1);
    for (int64_t b = 0; b < count; ++b) out.push_back(rand({batch, 1, 28, 28}, g));
  }
  return out;
}

void BM_VaeMlpTrainStep(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const std::vector<Tensor>& batches = training_batches(batch, 16);
  Generator init(1), noise(2);
  models::Autoencoder model(models::VaeConfig{}, init);
  optim::Adam adam(model.parameters(), {.lr = 1e-3});
  size_t i = 0;
  for (auto _ : state) {
    const models::VaeLoss l = models::train_step(model, adam, batches[i++ % batches.size()], noise);
    benchmark::DoNotOptimize(l.recon_sum);
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["img_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_VaeMlpTrainStep)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_VaeConvTrainStep(benchmark::State& state) {
  const int64_t batch = state.range(0);
  const std::vector<Tensor>& batches = training_batches(batch, 16);
  models::VaeConfig config;  // `latentlab train vae --arch conv`'s defaults on Fashion-MNIST
  config.arch = models::Arch::Conv;
  config.conv_channels = 32;
  config.latent_dim = 20;
  config.beta = 1.0;
  config.recon = models::Recon::BCE;
  Generator init(1), noise(2);
  models::Autoencoder model(config, init);
  optim::Adam adam(model.parameters(), {.lr = 1e-3});
  size_t i = 0;
  for (auto _ : state) {
    const models::VaeLoss l = models::train_step(model, adam, batches[i++ % batches.size()], noise);
    benchmark::DoNotOptimize(l.recon_sum);
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["img_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_VaeConvTrainStep)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();

// The same on the GPU, as `latentlab train` runs it: sync-free steps whose losses are read one step
// late; graph = 1 launches the step captured as a CUDA graph (--cuda-graph, models::VaeGraphStep),
// graph = 0 queues its kernels one by one. Side by side the two give the graph's saving of host time.
void BM_VaeMlpTrainStepCuda(benchmark::State& state) {
  std::string why;
  if (!cuda_available(&why) || !cuda_ops_built()) {
    state.SkipWithError(("no GPU: " + (why.empty() ? std::string("this build has no CUDA ops") : why)).c_str());
    return;
  }
  const int64_t batch = state.range(0);
  const bool graph = state.range(1) != 0;
  std::vector<Tensor> batches = training_batches(batch, 16);
  for (Tensor& b : batches) b = b.to(Device::CUDA);
  Generator init(1), noise(2);
  models::Autoencoder model(models::VaeConfig{}, init);
  model.to(Device::CUDA);
  optim::Adam adam(model.parameters(), {.lr = 1e-3});
  models::VaeGraphStep graphed(model, adam, noise);
  auto step = [&](const Tensor& x) {
    return graph ? graphed.step(x) : models::train_step_async(model, adam, x, noise);
  };
  size_t i = 0;
  for (int w = 0; w < 5; ++w) (void)step(batches[i++ % batches.size()]).get();  // warm-up (and the capture)
  models::PendingVaeLoss pending;
  for (auto _ : state) {
    models::PendingVaeLoss next = step(batches[i++ % batches.size()]);
    if (pending.defined()) benchmark::DoNotOptimize(pending.get().recon_sum);
    pending = std::move(next);
  }
  if (pending.defined()) benchmark::DoNotOptimize(pending.get().recon_sum);
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["img_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * batch), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_VaeMlpTrainStepCuda)->ArgNames({"batch", "graph"})->Args({128, 0})->Args({128, 1})
    ->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
