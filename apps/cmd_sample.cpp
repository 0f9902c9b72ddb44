// cmd_sample.cpp: `latentlab sample DIR` — decodes codes drawn from the prior N(0, I).
#include <filesystem>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "apps/cli_files.h"
#include "apps/commands.h"
#include "apps/device_flags.h"
#include "apps/run_dir.h"
#include "data/idx.h"
#include "data/image.h"
#include "data/plot.h"
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
  if (o.nrow < 1 || o.nrow > 1000) throw std::invalid_argument("--nrow must be in 1..1000");
  const Device device = apply_device_flags(o.device);
  GenerativeRun run = GenerativeRun::open(o.dir);
  if (o.numbered && !run.is_gan()) throw std::invalid_argument("--numbered is for GAN runs (it numbers a batch for arithmetic's groups)");
  const std::vector<int32_t> labels = run.labels(o.n, o.label);
  run.to(device);
  Generator gen(o.seed);
  // (n, C, H, W) in [0, 1], back on the host for the files. The codes are the same Philox draws on
  // either device.
  const Tensor images = run.decode(randn({o.n, run.latent_dim()}, gen, device), labels).to(Device::CPU);
  if (idx) {
    data::save_images_idx(o.out, images);
  } else if (o.numbered) {
    // Cell (r, c) is image r * nrow + c: rows labeled by their first index, columns by the offset.
    const int64_t rows = (o.n + o.nrow - 1) / o.nrow;
    std::vector<std::string> row_labels, col_labels;
    for (int64_t r = 0; r < rows; ++r) row_labels.push_back(std::to_string(r * o.nrow) + "+");
    for (int64_t c = 0; c < o.nrow; ++c) col_labels.push_back(std::to_string(c));
    data::save_png(o.out, data::with_header(data::labeled_sheet(images, o.nrow, row_labels, col_labels, "", 2),
                                            "generated batch, seed " + std::to_string(o.seed),
                                            {"image index = row label + column label (for arithmetic --plus/--minus/--base)"}));
  } else {
    data::save_png(o.out, data::make_grid(images, o.nrow, 2, 0, 0.0f, 1.0f, 2));
  }
  std::cerr << "latentlab: wrote " << o.n << " samples of " << run.describe() << " to " << o.out << "\n";
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
