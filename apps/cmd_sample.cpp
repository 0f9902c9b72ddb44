// cmd_sample.cpp: `latentlab sample DIR` — decodes codes drawn from the prior N(0, I).
#include <filesystem>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "apps/cli_files.h"
#include "apps/commands.h"
#include "apps/device_flags.h"
#include "apps/gan_lab.h"
#include "apps/run_dir.h"
#include "data/idx.h"
#include "data/image.h"
#include "engine/ops/ops.h"

namespace ll::app {

namespace {

struct SampleOptions {
  std::string dir;
  int64_t n = 64;
  uint64_t seed = 0;
  std::string out;
  int64_t nrow = 8;
  int64_t label = -1;     // conditional GAN: the class to draw (-1: cycle through the classes)
  bool numbered = false;  // GAN: label each cell with its index in the batch
  DeviceFlags device;     // --device, --conv-backend, --allow-tf32
};

void run_sample(const SampleOptions& o) {
  if (o.n < 1 || o.n > 100000) throw std::invalid_argument("--n must be in 1..100000");
  const bool idx = ends_with(o.out, ".idx") || ends_with(o.out, ".idx.gz");
  if (!idx && !ends_with(o.out, ".png")) throw std::invalid_argument("--out must name a .png or an .idx file, got '" + o.out + "'");
  const Device device = apply_device_flags(o.device);
  if (is_gan_run(o.dir)) {
    gan_sample(o.dir, o.n, o.seed, o.label, o.out, o.nrow, o.numbered, device);
    return;
  }
  if (o.label >= 0 || o.numbered) throw std::invalid_argument("--label and --numbered are for GAN runs");
  LoadedRun run = load_run(o.dir);
  auto& model = *run.model;
  model.to(device);
  model.eval();
  Generator gen(o.seed);
  // (n, C, H, W) in [0, 1], back on the host for the files. The codes are the same Philox draws on
  // either device.
  const Tensor images = model.generate(randn({o.n, model.config().latent_dim}, gen, device)).to(Device::CPU);
  if (idx) {
    data::save_images_idx(o.out, images);
  } else {
    data::save_png(o.out, data::make_grid(images, o.nrow, 2, 0, 0.0f, 1.0f, 2));
  }
  std::cerr << "latentlab: wrote " << o.n << " samples of " << model.config().describe() << " to " << o.out << "\n";
}

}  // namespace

void add_sample_command(CLI::App& app) {
  auto o = std::make_shared<SampleOptions>();
  CLI::App* cmd = app.add_subcommand("sample", "decode codes drawn from the prior (or a GAN's noise) into images: a PNG grid or an IDX file");
  cmd->add_option("dir", o->dir, "run directory written by latentlab train")->required();
  cmd->add_option("--n", o->n, "number of samples")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the prior draws")->capture_default_str();
  cmd->add_option("--nrow", o->nrow, "images per row of the grid")->capture_default_str();
  cmd->add_option("--out", o->out, "FILE.png (a grid) or FILE.idx (raw images, uint8)")->required();
  cmd->add_option("--label", o->label, "conditional GAN: draw this class (default: cycle through the classes)");
  cmd->add_flag("--numbered", o->numbered, "GAN: label each cell with its index in the batch (to pick arithmetic groups)");
  add_device_flags(cmd, o->device);
  cmd->callback([o] { run_sample(*o); });
}

}  // namespace ll::app
