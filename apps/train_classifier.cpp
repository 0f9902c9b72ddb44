#include "apps/train_classifier.h"

#include <chrono>
#include <cmath>
#include <memory>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "apps/run_dir.h"
#include "apps/train_control.h"
#include "apps/train_progress.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "engine/checkpoint.h"
#include "engine/optim/optimizer.h"
#include "models/classifier.h"

namespace ll::app {

namespace fs = std::filesystem;

void run_train_classifier(const ClassifierTrainOptions& o) {
  if (o.epochs < 1) throw std::invalid_argument("--epochs must be at least 1");
  if (o.batch_size < 2) throw std::invalid_argument("--batch-size must be at least 2 (BatchNorm needs a batch)");
  if (!(o.lr > 0.0) || !std::isfinite(o.lr)) throw std::invalid_argument("--lr must be a positive finite number");
  if (o.limit < 0) throw std::invalid_argument("--limit must be >= 0 (0: all images)");
  const Device device = apply_device_flags(o.device);
  // An existing directory is locked before the data is read, a new one once it has loaded.
  std::unique_ptr<RunLock> lock;
  if (fs::is_directory(o.out)) lock = std::make_unique<RunLock>(o.out);
  data::Dataset train = data::load_dataset(o.data, data::Split::Train);
  const data::Dataset test = data::load_dataset(o.data, data::Split::Test, train.height);
  if (train.labels.empty() || test.labels.empty()) throw std::invalid_argument("a classifier needs class labels; " + o.data + " has none");
  if (train.height != train.width) throw std::invalid_argument(o.data + ": the classifier takes square images");
  train.keep_first(o.limit);
  models::ClassifierConfig c;
  c.channels = train.channels;
  c.size = train.height;
  c.num_classes = static_cast<int64_t>(train.class_names.size());
  for (int32_t l : train.labels) c.num_classes = std::max<int64_t>(c.num_classes, l + 1);
  c.validate();
  const std::string path = (fs::path(o.out) / "classifier.safetensors").string();
  fs::create_directories(o.out);
  if (!lock) lock = std::make_unique<RunLock>(o.out);
  recover_run_dir(o.out);
  if (fs::exists(path)) throw std::invalid_argument(o.out + " already holds a classifier: choose another --out");

  Generator init(o.seed, 0);
  models::Classifier model(c, init);
  model.to(device);
  optim::Adam adam(model.parameters(), {.lr = o.lr});
  data::DataLoader loader(train, {.batch_size = o.batch_size, .shuffle = true, .drop_last = false,
                                  .scale = data::Scale::Unit, .seed = o.seed});
  std::vector<int64_t> all(static_cast<size_t>(test.n));
  for (int64_t i = 0; i < test.n; ++i) all[static_cast<size_t>(i)] = i;
  const Tensor test_images = data::gather_images(test, all, data::Scale::Unit).to(device);
  std::cerr << "latentlab: training the classifier (" << model.num_parameters() << " parameters) on " << train.name
            << " (" << train.n << " train, " << test.n << " test images), " << device_name(device) << ", batch "
            << o.batch_size << ", lr " << o.lr << ", seed " << o.seed << "\n";
  double test_accuracy = 0;
  // The classifier does not resume: what an interruption leaves is the classifier of the last
  // complete epoch, usable by `latentlab fid`.
  auto saved_phrase = [&](int64_t saved_epoch) {
    return saved_epoch > 0 ? "the last complete classifier is epoch " + std::to_string(saved_epoch) + " in " + path +
                                 " (a classifier does not resume: train again into another --out for more epochs)"
                           : "no epoch was complete, so nothing was saved in " + o.out;
  };
  StopSignals stop_signals;
  TrainProgress progress(o.epochs, o.log_every, TrainProgress::stderr_is_terminal());
  int64_t saved_epoch = 0;
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    const auto t0 = std::chrono::steady_clock::now();
    loader.start_epoch(epoch);
    model.train();
    double loss_sum = 0;
    int64_t correct = 0, seen = 0, step = 0;
    const int64_t steps = loader.batches_per_epoch();
    progress.start_epoch(epoch, steps);
    while (auto batch = loader.next()) {
      test_step_point(epoch + 1, ++step);
      const int64_t n = batch->images.size(0);
      const models::ClassifierStepResult r = models::classifier_train_step(model, adam, batch->images.to(device), batch->labels);
      if (!std::isfinite(r.loss)) {
        throw std::runtime_error("the classifier's loss became " + std::to_string(r.loss) + " at epoch " + std::to_string(epoch + 1) +
                                 " step " + std::to_string(step) + ": lower --lr (" + saved_phrase(saved_epoch) + ")");
      }
      loss_sum += r.loss * static_cast<double>(n);
      correct += r.correct;
      seen += n;
      char losses[64];
      std::snprintf(losses, sizeof(losses), "loss %.4f  accuracy %.4f", loss_sum / static_cast<double>(seen),
                    static_cast<double>(correct) / static_cast<double>(seen));
      progress.step(step, seen, losses);
      if (const int sig = StopSignals::pending()) {
        progress.clear();
        throw Interrupted(sig, "stopped by " + signal_name(sig) + " in epoch " + std::to_string(epoch + 1) + " after step " +
                                   std::to_string(step) + " of " + std::to_string(steps) + " (the epoch is not saved): " +
                                   saved_phrase(saved_epoch));
      }
    }
    const double train_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<int32_t> pred;
    models::classify(model, test_images, 500, nullptr, nullptr, &pred);
    int64_t hits = 0;
    for (size_t i = 0; i < pred.size(); ++i) hits += pred[i] == test.labels[i];
    test_accuracy = static_cast<double>(hits) / static_cast<double>(test.n);
    const std::string epoch_str = std::to_string(epoch + 1);
    // The classifier and its metrics line replace the previous epoch's together (apps/run_dir.h).
    CheckpointSet set(o.out, epoch + 1);
    double epoch_s = 0;
    save_checkpoint(set, epoch + 1, saved_epoch, [&] {
      save_module(set.stage("classifier.safetensors"), model,
                  {{"config", c.to_json()}, {"data", o.data}, {"epoch", epoch_str},
                   {"seed", std::to_string(o.seed)}, {"test_accuracy", std::to_string(test_accuracy)}});
      epoch_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      set.stage_metrics_line(nlohmann::json{{"epoch", epoch + 1},
                                            {"train_loss", loss_sum / static_cast<double>(seen)},
                                            {"train_accuracy", static_cast<double>(correct) / static_cast<double>(seen)},
                                            {"test_accuracy", test_accuracy},
                                            {"epoch_s", epoch_s},
                                            {"img_per_s", static_cast<double>(seen) / train_s}}
                                 .dump());
    });
    saved_epoch = epoch + 1;
    progress.clear();
    std::fprintf(stderr, "epoch %lld/%lld  loss %.4f  train accuracy %.4f  test accuracy %.4f  %.0f img/s  %.1f s\n",
                 static_cast<long long>(epoch + 1), static_cast<long long>(o.epochs), loss_sum / static_cast<double>(seen),
                 static_cast<double>(correct) / static_cast<double>(seen), test_accuracy,
                 static_cast<double>(seen) / train_s, epoch_s);
    if (const int sig = StopSignals::pending(); sig != 0 && epoch + 1 < o.epochs) {
      throw Interrupted(sig, "stopped by " + signal_name(sig) + " after epoch " + epoch_str + ": " + saved_phrase(saved_epoch));
    }
  }
  std::cerr << "latentlab: wrote " << path << " (test accuracy " << test_accuracy << ") and metrics.jsonl; `latentlab fid RUN --classifier "
            << o.out << "` measures a generator with it\n";
}

}  // namespace ll::app
