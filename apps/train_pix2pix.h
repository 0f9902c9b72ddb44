// train_pix2pix.h: `latentlab train pix2pix`: paired image-to-image translation (models/pix2pix.h)
// on pairs made from an image data set (data/paired.h): --task edges (Sobel edge map -> image) or
// --task inpaint (image with a masked square -> image). cmd_train.cpp parses the common flags and
// calls this; add_pix2pix_flags adds pix2pix's own.
//
// The run directory holds generator.safetensors (metadata: "config", "task" and its settings,
// "data", "epoch", "seed", "noise_offset" (the dropout masks' stream), "lr", "beta1", "batch_size",
// "lambda_l1", "gan_weight", "test_l1" and, with a classifier, "fid"), discriminator.safetensors,
// optimizer_g.safetensors, optimizer_d.safetensors, metrics.jsonl (per epoch: loss_d, loss_gan,
// l1 (the training loss's L1 term, on images in [-1, 1]: twice the same error in [0, 1] units),
// d_real, d_fake, test_l1, identity_l1, test_n, and with a classifier fid, identity_fid,
// fid_floor; epoch_s, img_per_s) and sheet_epoch<N>.png, also as sheet.png: 16 test pairs as rows input /
// output / target, twice. Test figures are on the first --test-limit test images (default 1000):
// test_l1 = mean |G(x) - y| with images in [0, 1]; identity_l1 is the same for the input itself
// (G = identity, the "do nothing" baseline); fid is latentlab's FID (apps/fid_eval.h) of the
// outputs against the test split, identity_fid that of the inputs, fid_floor that of as many real
// training images. An epoch's files are saved together, train.lock keeps a second training out,
// and --resume continues from the last complete epoch (apps/run_dir.h, apps/train_control.h).
#pragma once
#include <cstdint>
#include <string>

#include "apps/device_flags.h"

namespace CLI {
class App;
}

namespace ll::app {

struct Pix2PixTrainOptions {
  std::string task = "edges";
  std::string data = "fashion-mnist";
  int64_t epochs = 5;
  int64_t batch_size = 16;
  double lr = 2e-4, beta1 = 0.5;  // the paper's Adam settings
  double lambda_l1 = 100;          // the paper's lambda
  double gan_weight = 1;           // 0: the "L1 only" ablation
  float edge_threshold = 0.5f;
  int64_t mask_size = 12;
  int64_t ngf = 64, ndf = 64;
  DeviceFlags device;
  uint64_t seed = 1;
  std::string out;
  bool resume = false;
  int64_t limit = 0;
  int64_t test_limit = 1000;   // test images for test_l1, the FID and the sheet (0: all)
  std::string classifier;      // for the FID (default: runs/classifier-<data>, when it exists)
  int64_t log_every = 0;
  bool lr_given = false, beta1_given = false, batch_size_given = false;
};

// The flags only pix2pix takes (--task, --lambda-l1, --gan-weight, --edge-threshold, --mask-size),
// bound to `o`; their names for the "flag is for pix2pix" check.
void add_pix2pix_flags(CLI::App* cmd, Pix2PixTrainOptions& o);
const char* const* pix2pix_only_flags();  // nullptr-terminated

void run_train_pix2pix(const Pix2PixTrainOptions& options);

}  // namespace ll::app
