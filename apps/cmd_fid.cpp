// cmd_fid.cpp: `latentlab fid RUN_OR_IDX` — the Frechet distance of a generator's samples (or of an
// IDX file of images) to the test split of a data set, on the features of latentlab's own
// classifier (apps/fid_eval.h), with the classifier's view of the samples: the histogram of
// predicted classes, the mean confidence and, for the conditional GAN, the per-class accuracy.
#include <filesystem>
#include <iostream>
#include <memory>
#include <stdexcept>
#include <string>

#include "apps/commands.h"
#include "apps/device_flags.h"
#include "apps/fid_eval.h"
#include "apps/run_dir.h"
#include "data/idx.h"
#include "engine/autograd.h"
#include "engine/ops/ops.h"

namespace ll::app {

namespace {

namespace fs = std::filesystem;

struct FidOptions {
  std::string source;
  int64_t n = 5000;
  uint64_t seed = 0;
  int64_t label = -1;
  std::string classifier;
  bool floor = false;
  DeviceFlags device;
};

// (N, C, S, S) in [0, 1] from the first n images of an IDX file of (N, H, W) or (N, C, H, W) bytes.
Tensor idx_images(const std::string& path, int64_t n) {
  const data::IdxArray a = data::read_idx(path);
  if (a.dims.size() != 3 && a.dims.size() != 4) {
    throw std::runtime_error(path + ": expected images (N, H, W) or (N, C, H, W), the file holds " +
                             std::to_string(a.dims.size()) + " dimensions");
  }
  const int64_t count = std::min(n, a.dims[0]);
  const int64_t C = a.dims.size() == 4 ? a.dims[1] : 1, H = a.dims[a.dims.size() - 2], W = a.dims.back();
  std::vector<float> v(static_cast<size_t>(count * C * H * W));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(a.data[i]) / 255.0f;
  return Tensor::from_vector(v, {count, C, H, W});
}

void run_fid(const FidOptions& o) {
  if (o.n < 2 || o.n > 100000) throw std::invalid_argument("--n must be in 2..100000");
  const Device device = apply_device_flags(o.device);
  Tensor images;
  std::vector<int32_t> labels;
  std::string what, data = "fashion-mnist";
  if (fs::is_directory(o.source)) {
    constexpr int64_t kChunk = 500;
    std::vector<Tensor> parts;
    Generator gen(o.seed);
    GenerativeRun run = GenerativeRun::open(o.source);
    labels = run.labels(o.n, o.label);
    run.to(device);
    if (!run.data_name().empty()) data = run.data_name();
    for (int64_t b = 0; b < o.n; b += kChunk) {
      const int64_t k = std::min(kChunk, o.n - b);
      const std::vector<int32_t> part(labels.begin() + (labels.empty() ? 0 : b), labels.begin() + (labels.empty() ? 0 : b + k));
      parts.push_back(run.decode(randn({k, run.latent_dim()}, gen, device), part).to(Device::CPU));
    }
    what = run.describe() + " samples";
    images = cat(parts, 0);
  } else {
    if (o.label >= 0) throw std::invalid_argument("--label is for the conditional GAN (cgan), not for an IDX file");
    images = idx_images(o.source, o.n);
    what = "images of " + o.source;
  }
  const std::string classifier_dir = o.classifier.empty() ? default_classifier_dir(data) : o.classifier;
  FidEvaluator fid(classifier_dir, device);
  if (images.size(0) < o.n) {
    std::cerr << "latentlab: " << o.source << " holds " << images.size(0) << " images, fewer than --n " << o.n << "\n";
  }
  const FidReport r = fid.evaluate(images, labels);
  nlohmann::json j = r.to_json(fid.class_names());
  j["source"] = o.source;
  j["classifier"] = classifier_dir;
  j["classifier_test_accuracy"] = fid.classifier_accuracy();
  j["reference"] = fid.data_name() + " test split (" + std::to_string(fid.reference_count()) + " images)";
  if (o.floor) j["floor"] = fid.floor(r.n).fid;
  std::cout << j.dump() << "\n";
  std::cerr << "latentlab: FID " << r.fid << " of " << r.n << " " << what << " against " << j["reference"].get<std::string>()
            << " (classifier " << classifier_dir << ", test accuracy " << fid.classifier_accuracy() << ")";
  if (o.floor) std::cerr << "; real training images score " << j["floor"].get<double>();
  std::cerr << "\n";
}

}  // namespace

void add_fid_command(CLI::App& app) {
  auto o = std::make_shared<FidOptions>();
  CLI::App* cmd = app.add_subcommand(
      "fid", "Frechet distance of a run's samples (or an IDX file's images) to a data set's test split, on latentlab's classifier");
  cmd->add_option("source", o->source, "a run directory (GAN, VAE or AE) or an IDX file of images")->required();
  cmd->add_option("--n", o->n, "number of samples (or the first N images of the file)")->capture_default_str();
  cmd->add_option("--seed", o->seed, "seed of the noise the samples are drawn from")->capture_default_str();
  cmd->add_option("--label", o->label, "conditional GAN: draw only this class (default: cycle through the classes)");
  cmd->add_option("--classifier", o->classifier,
                  "classifier run directory (default: runs/classifier-<the run's data set>, written by `latentlab train classifier`)");
  cmd->add_flag("--floor", o->floor, "also score the first N training images: the real-data floor");
  add_device_flags(cmd, o->device);
  cmd->callback([o] { run_fid(*o); });
}

}  // namespace ll::app
