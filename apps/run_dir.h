// run_dir.h: the run directory that `latentlab train` writes and every other subcommand reads.
//
//   DIR/model.safetensors      the model's state_dict (PyTorch names); metadata: "config" (the model
//                              configuration as JSON), "data", "epoch", "seed", "noise_offset"
//   DIR/optimizer.safetensors  Adam's state (metadata "epoch"), for --resume
//   DIR/metrics.jsonl          one JSON object per epoch
//   DIR/samples_epoch<N>.png   8x8 grid of decoded prior samples after epoch N
//   DIR/recon.png              test images (odd rows) above their reconstructions (even rows)
// Every file is written to a temporary name and renamed, so a killed run leaves the last complete
// epoch's files.
#pragma once
#include <memory>
#include <string>

#include "data/dataset.h"
#include "engine/checkpoint.h"
#include "models/vae.h"

namespace ll::app {

std::string model_path(const std::string& dir);
std::string optimizer_path(const std::string& dir);
std::string metrics_path(const std::string& dir);

struct LoadedRun {
  std::unique_ptr<models::Autoencoder> model;
  Metadata metadata;
};

// Loads DIR/model.safetensors and rebuilds the model from its metadata. Throws std::runtime_error
// with what to do when DIR holds no model.
LoadedRun load_run(const std::string& dir);

// The loss of a model over a whole data set, in file order, without gradients, in eval mode (the
// model's mode is restored afterwards). The VAE draws one z per image from `noise`.
struct DatasetLoss {
  double recon = 0, kl = 0;  // sums over the images
  int64_t n = 0;
  double recon_per_image() const { return recon / static_cast<double>(n); }
  double kl_per_image() const { return kl / static_cast<double>(n); }
  double loss_per_image(double beta) const { return (recon + beta * kl) / static_cast<double>(n); }
};
DatasetLoss evaluate_dataset(models::Autoencoder& model, const data::Dataset& dataset, int64_t batch_size,
                             Generator& noise, Device device = Device::CPU);

// Appends one line to DIR/metrics.jsonl (the file is rewritten through a temporary file).
void append_metrics_line(const std::string& dir, const std::string& json_line);

// Writes `text` to `path` through a temporary file and a rename.
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace ll::app
