// gan_trace.h: a GAN's whole training trajectory, step by step, for comparison with its PyTorch
// twin (bench/pytorch/dcgan28.py trace; tests/models/test_gan_trace.cpp).
//
// One step matching PyTorch (tests/models/test_gan_parity.cpp) says nothing about step 500: the
// Adam moments, the BatchNorm running statistics, the data order and the noise only show their
// effect over many steps. A trace fixes everything that is random — the initial weights, the
// images of every batch and the noise of every step — as *inputs*, written to a file that PyTorch
// reads, and records what each step did:
//
//   inputs   G.<name>, D.<name>   the initial state_dicts, from train_gan's own initialization
//            indices (steps, B)   data-set positions of each step's real images: the loader's
//                                 shuffle (data/loader.h shuffled_indices), epoch after epoch,
//                                 the last partial batch dropped, as `latentlab train dcgan` visits them
//            noise (steps, B, nz) each step's z, drawn from train_gan's noise stream
//            fixed_z (E, nz)      codes for the eval-mode samples at the end
//   record   loss_d, loss_g, d_real, d_fake, d_fake_after, d_accuracy   (steps) per step, as
//                                 models::GanStepResult defines them
//            bn.G.<buffer>, bn.D.<buffer>  (steps, C) every BatchNorm running_mean / running_var
//                                 after each step
//            final.G.<name>, final.D.<name>  the state_dicts after the last step
//            eval_fake (E, C, S, S)  G(fixed_z) in eval mode (running statistics) at the end
//
// The images are indices into the data set, not pixels: both sides read Fashion-MNIST themselves
// and scale it the same way (x / 127.5 - 1 in float32), which keeps the inputs file small.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "data/dataset.h"
#include "engine/tensor.h"
#include "models/gan.h"

namespace ll::models {

struct GanTraceSpec {
  GanConfig config;
  int64_t steps = 200;
  int64_t batch_size = 64;
  uint64_t seed = 1;
  int64_t eval_samples = 16;
  double lr = 2e-4, beta1 = 0.5;
};

using TensorMap = std::map<std::string, Tensor>;

// The inputs of a trace over a training set of `train_n` images, made the way `latentlab train`
// makes them for the same seed (train_gan.cpp's streams).
TensorMap make_gan_trace_inputs(const GanTraceSpec& spec, int64_t train_n);

// Trains from the inputs for spec.steps steps of models::gan_train_step on `train` (CPU) and
// returns the record (names above).
TensorMap run_gan_trace(const GanTraceSpec& spec, const TensorMap& inputs, const data::Dataset& train);

// The noise streams of a GAN run of `latentlab train` (apps/train_gan.cpp uses these).
enum GanStream : uint64_t { kGanInitStream = 0, kGanNoiseStream = 1, kGanFixedNoiseStream = 2 };

}  // namespace ll::models
