// train_dbvae.h: `latentlab train dbvae`: the debiasing VAE of Amini et al. (AIES 2019,
// models/dbvae.h) on a binary task with a rare subgroup (data/biased.h), or, with --debias off, the
// same network trained as a plain classifier on the same data for the same number of steps.
//
// The run directory holds dbvae.safetensors (metadata: "config", "data", "task", "debias", "alpha",
// "bins", "epoch", "seed", "lr", "batch_size", and the last epoch's test accuracies) and metrics.jsonl
// (per epoch: the losses, the training accuracy, the test accuracy overall and per subgroup, the
// minority's share of the sampling weights, epoch_s, img_per_s), saved together each epoch
// (apps/run_dir.h: CheckpointSet) under train.lock. `latentlab debias-report RUN...` reads it. No
// --resume: an interrupted run keeps its last complete epoch.
//
// An epoch has as many positive and negative images as the training set. Negatives: a shuffle of
// all of them. Positives, debias on: drawn with replacement by debias_weights, computed at the start
// of the epoch from the latent means of every positive training image; debias off: a shuffle. Each
// batch takes its share of both lists, positives first (models::dbvae_train_step).
#pragma once
#include <cstdint>
#include <string>

#include "apps/device_flags.h"
#include "data/biased.h"

namespace ll::app {

struct DbVaeTrainOptions {
  std::string data = "fashion-mnist";
  data::BiasedTask task;
  int64_t epochs = 10;
  int64_t batch_size = 128;
  double lr = 1e-3;
  int64_t hidden = 256;
  int64_t latent_dim = 8;
  bool debias = true;
  double alpha = 0.3;
  int64_t bins = 10;
  DeviceFlags device;
  uint64_t seed = 1;
  std::string out;
  int64_t limit = 0;       // the first N images of the source training split (before the task picks)
  int64_t test_limit = 0;  // the same for the test split, for the per-epoch test figures only
  int64_t log_every = 0;  // apps/train_progress.h
};

void run_train_dbvae(const DbVaeTrainOptions& options);

// The epoch's positive draw when debiasing (exposed for tests): n indices into weights (which sum
// to 1), drawn with replacement by inverse CDF from Philox stream (seed, 2^40 + epoch).
std::vector<int64_t> weighted_draw(const std::vector<double>& weights, int64_t n, uint64_t seed, int64_t epoch);

}  // namespace ll::app
