// train_classifier.h: `latentlab train classifier`: the classifier whose features `latentlab fid`
// measures (models/classifier.h, apps/fid_eval.h).
//
// The run directory holds classifier.safetensors (metadata: "config", "data", "epoch", "seed",
// "test_accuracy") and metrics.jsonl (per epoch: train_loss, train_accuracy, test_accuracy,
// epoch_s, img_per_s). Adam 1e-3, batch 128, images in [0, 1], the last partial batch kept. Each
// epoch's two files are saved together, and train.lock keeps a second training out (apps/run_dir.h,
// apps/train_control.h); the classifier has no --resume.
#pragma once
#include <cstdint>
#include <string>

#include "apps/device_flags.h"

namespace ll::app {

struct ClassifierTrainOptions {
  std::string data = "fashion-mnist";
  int64_t epochs = 5;
  int64_t batch_size = 128;
  double lr = 1e-3;
  DeviceFlags device;
  uint64_t seed = 1;
  std::string out;
  int64_t limit = 0;
  int64_t log_every = 0;  // progress lines where stderr is not a terminal (apps/train_progress.h)
};

void run_train_classifier(const ClassifierTrainOptions& options);

}  // namespace ll::app
