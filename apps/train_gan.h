// train_gan.h: `latentlab train dcgan|cgan`: the GAN half of the train subcommand (cmd_train.cpp
// parses the flags and calls this).
//
// The run directory holds generator.safetensors (metadata: "config" with the GAN's configuration,
// "epoch", "seed", "noise_offset", and the settings --resume continues with: "lr", "beta1",
// "batch_size"), discriminator.safetensors, optimizer_g.safetensors, optimizer_d.safetensors,
// metrics.jsonl (per epoch: loss_d, loss_g, d_real, d_fake, d_accuracy, epoch_s, img_per_s; with a
// classifier: fid, fid_class_histogram, fid_mean_confidence and, for cgan,
// fid_per_class_accuracy) and samples_epoch<N>.png: the generator's images for one fixed batch of noise
// (for cgan, row r shows class r), so the pictures of successive epochs compare. An epoch's files are
// saved together, and train.lock keeps a second training out (apps/run_dir.h, apps/train_control.h).
#pragma once
#include <cstdint>
#include <string>

#include "apps/device_flags.h"

namespace ll::app {

struct GanTrainOptions {
  std::string model;  // dcgan, gan128 or cgan
  std::string data = "fashion-mnist";
  int64_t epochs = 5;
  int64_t batch_size = 128;
  double lr = 2e-4;     // pytorch/examples dcgan
  double beta1 = 0.5;   // Adam's betas (0.5, 0.999), as DCGAN
  int64_t nz = 100, ngf = 64, ndf = 64;
  DeviceFlags device;  // --device, --conv-backend, --allow-tf32
  uint64_t seed = 1;
  std::string out;
  bool resume = false;
  int64_t limit = 0;
  int64_t image_size = 0;      // side a folder of images is resized to (0: the model's: 64, 128 for gan128, 28 for cgan)
  int64_t fid_n = 5000;        // samples for the FID after each epoch (0: none)
  std::string classifier;      // its classifier (default: runs/classifier-<data>, when it exists)
  int64_t log_every = 0;       // progress lines where stderr is not a terminal (apps/train_progress.h)
  std::string dist = "auto";   // --dist (engine/dist/communicator.h); dcgan and cgan train data-parallel
  int64_t micro_batches = 1;   // --micro-batches: parts of each rank's batch, one after the other
  bool sync_bn = false;        // --sync-bn: BatchNorm statistics of the whole batch across the ranks
  // Given on the command line: --resume takes the run's recorded values of the others.
  bool lr_given = false, beta1_given = false, batch_size_given = false;
};

void run_train_gan(const GanTrainOptions& options);

}  // namespace ll::app
