#include "apps/run_dir.h"

#include "data/loader.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ll::app {

namespace fs = std::filesystem;

std::string model_path(const std::string& dir) { return (fs::path(dir) / "model.safetensors").string(); }
std::string optimizer_path(const std::string& dir) { return (fs::path(dir) / "optimizer.safetensors").string(); }
std::string metrics_path(const std::string& dir) { return (fs::path(dir) / "metrics.jsonl").string(); }

LoadedRun load_run(const std::string& dir) {
  if (!fs::is_directory(dir)) {
    throw std::runtime_error("run directory '" + dir + "' does not exist: train a model first (latentlab train vae --out " + dir + ")");
  }
  const std::string path = model_path(dir);
  if (!fs::exists(path)) {
    throw std::runtime_error("'" + dir + "' holds no model.safetensors: train a model first (latentlab train vae --out " + dir + ")");
  }
  LoadedRun run;
  const auto tensors = load_tensors(path, &run.metadata);
  auto it = run.metadata.find("config");
  if (it == run.metadata.end()) throw std::runtime_error(path + ": no model configuration in the file's metadata");
  models::VaeConfig config;
  try {
    config = models::VaeConfig::from_json(it->second);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  Generator init(0);  // the values are replaced by the checkpoint's
  run.model = std::make_unique<models::Autoencoder>(config, init);
  try {
    run.model->load_state_dict(tensors);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  return run;
}

DatasetLoss evaluate_dataset(models::Autoencoder& model, const data::Dataset& dataset, int64_t batch_size,
                             Generator& noise, Device device) {
  data::DataLoader loader(dataset, {.batch_size = batch_size, .shuffle = false, .drop_last = false,
                                    .scale = data::Scale::Unit, .seed = 0});
  const bool was_training = model.is_training();
  model.eval();
  DatasetLoss t;
  loader.start_epoch(0);
  while (auto batch = loader.next()) {
    const models::VaeLoss l = models::eval_batch(model, batch->images.to(device), noise);
    t.recon += l.recon_sum;
    t.kl += l.kl_sum;
    t.n += l.n;
  }
  model.train(was_training);
  return t;
}

void write_file_atomic(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("cannot write '" + tmp + "'");
    f << text;
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      throw std::runtime_error("writing '" + tmp + "' failed (disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot rename '" + tmp + "' to '" + path + "': " + ec.message());
  }
}

void append_metrics_line(const std::string& dir, const std::string& json_line) {
  const std::string path = metrics_path(dir);
  std::string text;
  if (fs::exists(path)) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    text = s.str();
  }
  write_file_atomic(path, text + json_line + "\n");
}

}  // namespace ll::app
