// cmd_eval.cpp: `latentlab eval DIR` — the test-set loss per image and its parts, as one JSON line.
// The VAE's loss uses one sampled z per test image (as pytorch/examples computes its test loss).
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/commands.h"
#include "apps/device_flags.h"
#include "apps/run_dir.h"
#include "data/dataset.h"

namespace ll::app {

namespace {

struct EvalOptions {
  std::string dir;
  std::string data;  // default: the data the run was trained on
  int64_t batch_size = 128;
  uint64_t seed = 0;
  bool seed_given = false, batch_size_given = false;  // else the run's own
  DeviceFlags device;  // --device, --conv-backend, --allow-tf32
};

void run_eval(const EvalOptions& o) {
  const Device device = apply_device_flags(o.device);
  LoadedRun run = load_run(o.dir);  // checkpoints are device-independent: read on the CPU, then moved
  auto& model = *run.model;
  model.to(device);
  const std::string data_name = o.data.empty() ? run.metadata["data"] : o.data;
  const auto& c = model.config();
  const data::Dataset test = load_test_set(data_name, c);
  // The training's test pass draws its codes from the run's seed, stream kVaeTestNoise, so by
  // default eval reproduces the last metrics.jsonl line's test loss; --seed draws other codes.
  const std::string path = model_path(o.dir);
  const uint64_t seed = o.seed_given ? o.seed : metadata_count(run.metadata, "seed", path);
  Generator noise(seed, kVaeTestNoise);
  const int64_t epoch = static_cast<int64_t>(metadata_count(run.metadata, "epoch", path, INT64_MAX));
  // (and in batches of the training's size: how the codes are drawn in batches moves the stream)
  int64_t batch_size = o.batch_size;
  if (!o.batch_size_given && run.metadata.count("batch_size")) {
    batch_size = static_cast<int64_t>(metadata_count(run.metadata, "batch_size", path, int64_t{1} << 20));
  }
  if (batch_size < 1) throw std::invalid_argument("--batch-size must be at least 1");
  const DatasetLoss t = evaluate_dataset(model, test, batch_size, noise, device);
  nlohmann::json line{{"model", c.describe()},          {"data", data_name},      {"images", t.n},
                      {"test_loss", t.loss_per_image(c.beta)}, {"recon", t.recon_per_image()}, {"kl", t.kl_per_image()},
                      {"epoch", epoch}, {"seed", seed}};
  std::cout << line.dump() << "\n";
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "test-set loss per image (and its parts) as one JSON line");
  cmd->add_option("dir", o->dir, "run directory written by latentlab train")->required();
  cmd->add_option("--data", o->data, "data set to evaluate on (default: the one the run was trained on)");
  cmd->add_option("--batch-size", o->batch_size, "images per batch (default: the run's training batch size)");
  cmd->add_option("--seed", o->seed,
                  "seed of the sampled codes (default: the run's, which gives metrics.jsonl's test loss)");
  add_device_flags(cmd, o->device);
  cmd->callback([o, cmd] {
    o->seed_given = cmd->count("--seed") > 0;
    o->batch_size_given = cmd->count("--batch-size") > 0;
    run_eval(*o);
  });
}

}  // namespace ll::app
