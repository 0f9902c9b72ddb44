// cmd_eval.cpp: `latentlab eval DIR` — the test-set loss per image and its parts, as one JSON line.
// The VAE's loss uses one sampled z per test image (as pytorch/examples computes its test loss).
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "apps/commands.h"
#include "apps/run_dir.h"
#include "data/dataset.h"
#include "data/loader.h"

namespace ll::app {

namespace {

struct EvalOptions {
  std::string dir;
  std::string data;  // default: the data the run was trained on
  int64_t batch_size = 128;
  uint64_t seed = 0;
};

void run_eval(const EvalOptions& o) {
  LoadedRun run = load_run(o.dir);
  auto& model = *run.model;
  const std::string data_name = o.data.empty() ? run.metadata["data"] : o.data;
  const data::Dataset test = data::load_dataset(data_name, data::Split::Test);
  const auto& c = model.config();
  if (test.channels != c.channels || test.height != c.height || test.width != c.width) {
    throw std::invalid_argument(data_name + " has " + std::to_string(test.channels) + "x" + std::to_string(test.height) + "x" +
                                std::to_string(test.width) + " images; the model takes " + std::to_string(c.channels) +
                                "x" + std::to_string(c.height) + "x" + std::to_string(c.width));
  }
  model.eval();
  data::DataLoader loader(test, {.batch_size = o.batch_size, .shuffle = false, .drop_last = false, .scale = data::Scale::Unit, .seed = 0});
  Generator noise(o.seed);
  double recon = 0, kl = 0;
  int64_t n = 0;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    const models::VaeLoss l = models::eval_batch(model, batch->images, noise);
    recon += l.recon_sum;
    kl += l.kl_sum;
    n += l.n;
  }
  const double dn = static_cast<double>(n);
  nlohmann::json line{{"model", c.describe()},          {"data", data_name},      {"images", n},
                      {"test_loss", (recon + c.beta * kl) / dn}, {"recon", recon / dn}, {"kl", kl / dn},
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
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace ll::app
