// gan_lab.h: the latent experiments on a GAN run (a directory written by `latentlab train dcgan|cgan`).
// A GAN has a generator and no encoder, so everything happens in its noise space z, as in the study:
// images are generated from seeded noise, and groups of them are picked by their index in a
// generated batch (`sample --numbered` shows the indices). sample, interpolate and arithmetic call
// these when their run directory holds a GAN.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "models/gan.h"

namespace ll::app {

// True when DIR holds generator.safetensors (a GAN run).
bool is_gan_run(const std::string& dir);

struct LoadedGan {
  std::unique_ptr<models::GanGenerator> generator;
  Metadata metadata;
};
LoadedGan load_gan_run(const std::string& dir);

// Images in [0, 1] (the generator's [-1, 1] mapped) from noise z (N, nz); labels for the
// conditional GAN (one per row), else empty. No graph is recorded.
Tensor gan_images(models::GanGenerator& g, const Tensor& z, const std::vector<int32_t>& labels);

// Labels for n images of a conditional GAN: all `label` when it is >= 0, else 0, 1, 2, ... cycling
// over the classes. Empty for an unconditional GAN (where label must be -1).
std::vector<int32_t> gan_labels(const models::GanConfig& c, int64_t n, int64_t label);

// `sample` on a GAN: n images from noise of `seed`; a PNG grid (numbered: each cell labeled with its
// index in the batch, for picking groups for arithmetic) or an IDX file.
// The generator runs on `device` (the noise is the same Philox draws on either).
void gan_sample(const std::string& dir, int64_t n, uint64_t seed, int64_t label, const std::string& out, int64_t nrow,
                bool numbered, Device device = Device::CPU);

// `interpolate` on a GAN: between two seeded noise vectors (rows 0 and 1 of one (2, nz) draw).
void gan_interpolate(const std::string& dir, int64_t steps, const std::vector<std::string>& modes, uint64_t seed,
                     int64_t label, const std::string& out);

// `arithmetic` on a GAN, the study's form: a batch of `batch` images from noise of `seed`; the plus,
// minus and base groups are index lists into it ("idx:3,17,42" or "3,17,42"); the vector
// mean(plus) - mean(minus) is added to mean(base) and to each base image's noise.
void gan_arithmetic(const std::string& dir, int64_t batch, uint64_t seed, int64_t label, const std::string& plus,
                    const std::string& minus, const std::string& base, const std::string& out);

}  // namespace ll::app
