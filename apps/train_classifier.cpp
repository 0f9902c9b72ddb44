#include "apps/train_classifier.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <utility>

#include "apps/run_dir.h"
#include "apps/train_control.h"
#include "apps/train_loop.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "engine/checkpoint.h"
#include "engine/optim/optimizer.h"
#include "models/classifier.h"

namespace ll::app {

namespace fs = std::filesystem;

// The classifier's part of the epoch loop (apps/train_loop.h): a step is one Adam step on softmax
// cross-entropy (synchronous: models::classifier_train_step returns its figures), the sums are the
// loss and the hits, the end of an epoch is the test accuracy, and an epoch saves the classifier with
// its configuration, data set and test accuracy in the metadata.
class ClassifierSteps : public EpochSteps {
 public:
  ClassifierSteps(const ClassifierTrainOptions& o, const models::ClassifierConfig& c, models::Classifier& model,
                  optim::Adam& adam, data::DataLoader& loader, const data::Dataset& test, const Tensor& test_images,
                  Device device)
      : o_(o), c_(c), model_(model), adam_(adam), loader_(loader), test_(test), test_images_(test_images), device_(device) {}

  double test_accuracy() const { return test_accuracy_; }

  int64_t start_epoch(int64_t epoch) override {
    loader_.start_epoch(epoch);
    model_.train();
    loss_sum_ = 0;
    correct_ = seen_ = 0;
    return loader_.batches_per_epoch();
  }
  bool next_batch() override { return (batch_ = loader_.next()).has_value(); }
  void queue_step() override {
    const models::ClassifierStepResult r =
        models::classifier_train_step(model_, adam_, batch_->images.to(device_), batch_->labels);
    done_.push_back({r, batch_->images.size(0)});
  }
  StepDone finish_step() override {
    const auto [r, n] = done_.front();
    done_.pop_front();
    StepDone done;
    done.images = n;
    done.scalars = {{"loss", r.loss}, {"accuracy", static_cast<double>(r.correct) / static_cast<double>(n)}};
    if (!std::isfinite(r.loss)) done.nonfinite = "the classifier's loss became " + std::to_string(r.loss);
    loss_sum_ += r.loss * static_cast<double>(n);
    correct_ += r.correct;
    seen_ += n;
    return done;
  }
  std::string running_losses() const override {
    char text[64];
    std::snprintf(text, sizeof(text), "loss %.4f  accuracy %.4f", loss_sum_ / static_cast<double>(seen_),
                  static_cast<double>(correct_) / static_cast<double>(seen_));
    return text;
  }
  double lr() const override { return o_.lr; }
  void end_epoch(int64_t, const EpochTiming&) override {
    std::vector<int32_t> pred;
    models::classify(model_, test_images_, 500, nullptr, nullptr, &pred);
    int64_t hits = 0;
    for (size_t i = 0; i < pred.size(); ++i) hits += pred[i] == test_.labels[i];
    test_accuracy_ = static_cast<double>(hits) / static_cast<double>(test_.n);
  }
  void save(int64_t epoch, CheckpointSet& set, const EpochTiming& t) override {
    save_module(set.stage("classifier.safetensors"), model_,
                {{"config", c_.to_json()}, {"data", o_.data}, {"epoch", std::to_string(epoch + 1)},
                 {"seed", std::to_string(o_.seed)}, {"test_accuracy", std::to_string(test_accuracy_)}});
    epoch_s_ = t.seconds_so_far();
    set.stage_metrics_line(nlohmann::json{{"epoch", epoch + 1},
                                          {"train_loss", loss_sum_ / static_cast<double>(seen_)},
                                          {"train_accuracy", static_cast<double>(correct_) / static_cast<double>(seen_)},
                                          {"test_accuracy", test_accuracy_},
                                          {"epoch_s", epoch_s_},
                                          {"img_per_s", static_cast<double>(seen_) / t.train_s}}
                               .dump());
  }
  std::string summary(int64_t epoch, const EpochTiming& t) const override {
    char text[192];
    std::snprintf(text, sizeof(text), "epoch %lld/%lld  loss %.4f  train accuracy %.4f  test accuracy %.4f  %.0f img/s  %.1f s",
                  static_cast<long long>(epoch + 1), static_cast<long long>(o_.epochs), loss_sum_ / static_cast<double>(seen_),
                  static_cast<double>(correct_) / static_cast<double>(seen_), test_accuracy_,
                  static_cast<double>(seen_) / t.train_s, epoch_s_);
    return text;
  }

 private:
  const ClassifierTrainOptions& o_;
  const models::ClassifierConfig& c_;
  models::Classifier& model_;
  optim::Adam& adam_;
  data::DataLoader& loader_;
  const data::Dataset& test_;
  const Tensor& test_images_;
  Device device_;
  std::optional<data::Batch> batch_;
  std::deque<std::pair<models::ClassifierStepResult, int64_t>> done_;  // a step's figures and its batch's size
  double loss_sum_ = 0, epoch_s_ = 0, test_accuracy_ = 0;
  int64_t correct_ = 0, seen_ = 0;
};

void run_train_classifier(const ClassifierTrainOptions& o) {
  check_training_flags(o.epochs, o.batch_size, 2, o.lr, o.limit);
  const Device device = apply_device_flags(o.device);
  TrainingDir run_dir(o.out);  // locked now if it exists, else created by open() once the data has loaded
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
  run_dir.open();
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
  // The classifier does not resume: what an interruption leaves is the classifier of the last
  // complete epoch, usable by `latentlab fid`.
  auto saved_phrase = [&](int64_t saved_epoch) {
    return saved_epoch > 0 ? "the last complete classifier is epoch " + std::to_string(saved_epoch) + " in " + path +
                                 " (a classifier does not resume: train again into another --out for more epochs)"
                           : "no epoch was complete, so nothing was saved in " + o.out;
  };
  ClassifierSteps steps{o, c, model, adam, loader, test, test_images, device};
  LoopOptions loop(o.out, 0, o.epochs, o.log_every);
  loop.saved_phrase = saved_phrase;
  run_epochs(steps, loop);
  const double test_accuracy = steps.test_accuracy();
  std::cerr << "latentlab: wrote " << path << " (test accuracy " << test_accuracy << ") and metrics.jsonl; `latentlab fid RUN --classifier "
            << o.out << "` measures a generator with it\n";
}

}  // namespace ll::app
