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
  DeviceFlags device;  // --device, --conv-backend, --allow-tf32
};

void run_eval(const EvalOptions& o) {
  const Device device = apply_device_flags(o.device);
  LoadedRun run = load_run(o.dir);  // checkpoints are device-independent: read on the CPU, then moved
  auto& model = *run.model;
  model.to(device);
  const std::string data_name = o.data.empty() ? run.metadata["data"] : o.data;
  const data::Dataset test = data::load_dataset(data_name, data::Split::Test);
  const auto& c = model.config();
  if (test.channels != c.channels || test.height != c.height || test.width != c.width) {
    throw std::invalid_argument(data_name + " has " + std::to_string(test.channels) + "x" + std::to_string(test.height) + "x" +
                                std::to_string(test.width) + " images; the model takes " + std::to_string(c.channels) +
                                "x" + std::to_string(c.height) + "x" + std::to_string(c.width));
  }
  Generator noise(o.seed);
  const DatasetLoss t = evaluate_dataset(model, test, o.batch_size, noise, device);
  nlohmann::json line{{"model", c.describe()},          {"data", data_name},      {"images", t.n},
                      {"test_loss", t.loss_per_image(c.beta)}, {"recon", t.recon_per_image()}, {"kl", t.kl_per_image()},
                      {"epoch", run.metadata["epoch"]}, {"seed", o.seed}};
  std::cout << line.dump() << "\n";
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "test-set loss per image (and its parts) as one JSON line");
  cmd->add_option("dir", o->dir, "run directory written by latentlab train")->required();
  cmd->add_option("--data", o->data, "data set to evaluate on (default: the one the run was trained on)");
  cmd->add_option("--batch-size", o->batch_size, "images per batch")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the sampled codes")->capture_default_str();
  add_device_flags(cmd, o->device);
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace ll::app
