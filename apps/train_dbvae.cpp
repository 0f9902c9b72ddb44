#include "apps/train_dbvae.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "apps/run_dir.h"
#include "apps/train_control.h"
#include "apps/train_loop.h"
#include "data/loader.h"
#include "engine/checkpoint.h"
#include "engine/optim/optimizer.h"
#include "kernels/common/philox.h"
#include "models/dbvae.h"

namespace ll::app {

namespace fs = std::filesystem;

namespace {

// Philox subsequences of the run's seed: the weighted draw of epoch e is 2^40 + e, the shuffle of
// the positives (debias off) 2^41 + e; the negatives' shuffle is the loader's (subsequence e); the
// initial weights 0 and the VAE's noise 1, as in every VAE run (apps/run_dir.h).
constexpr int64_t kDrawStream = int64_t{1} << 40, kPositiveShuffle = int64_t{1} << 41;

// Test accuracy overall and per subgroup of a biased test set, from the model's logits.
struct GroupAccuracy {
  double overall = 0, majority = 0, minority = 0, negative = 0;
};

GroupAccuracy group_accuracy(const std::vector<float>& logits, const data::BiasedData& test) {
  int64_t hits[3] = {0, 0, 0}, count[3] = {0, 0, 0};
  for (size_t i = 0; i < logits.size(); ++i) {
    const uint8_t g = test.group[i];
    ++count[g];
    hits[g] += (logits[i] > 0.0f) == (test.data.labels[i] == 1);
  }
  auto share = [](int64_t h, int64_t c) { return c > 0 ? static_cast<double>(h) / static_cast<double>(c) : 0.0; };
  return {share(hits[0] + hits[1] + hits[2], count[0] + count[1] + count[2]), share(hits[data::kMajority], count[data::kMajority]),
          share(hits[data::kMinority], count[data::kMinority]), share(hits[data::kNegative], count[data::kNegative])};
}

class DbVaeSteps : public EpochSteps {
 public:
  DbVaeSteps(const DbVaeTrainOptions& o, const models::DbVaeConfig& c, models::DbVae& model, optim::Adam& adam,
             Generator& noise, const data::BiasedData& train, const data::BiasedData& test, const Tensor& positives,
             const Tensor& test_images, Device device)
      : o_(o), c_(c), model_(model), adam_(adam), noise_(noise), train_(train), test_(test), positives_(positives),
        test_images_(test_images), device_(device) {
    for (int64_t i = 0; i < train.data.n; ++i) (train.data.labels[static_cast<size_t>(i)] == 1 ? pos_ : neg_).push_back(i);
  }

  const GroupAccuracy& accuracy() const { return acc_; }

  int64_t start_epoch(int64_t epoch) override {
    const int64_t n_pos = static_cast<int64_t>(pos_.size()), n_neg = static_cast<int64_t>(neg_.size());
    std::vector<int64_t> pos_order;
    if (o_.debias) {
      // The paper's Algorithm 1: the latent means of every positive image under the current
      // encoder, their per-unit histograms, and the epoch's draw by the resulting weights.
      std::vector<float> mu;
      models::dbvae_encode_all(model_, positives_, 1000, &mu, nullptr);
      const std::vector<double> w = models::debias_weights(mu, n_pos, c_.latent_dim, o_.bins, o_.alpha);
      minority_mass_ = 0;
      for (int64_t i = 0; i < n_pos; ++i) {
        if (train_.group[static_cast<size_t>(pos_[static_cast<size_t>(i)])] == data::kMinority) minority_mass_ += w[static_cast<size_t>(i)];
      }
      for (int64_t k : weighted_draw(w, n_pos, o_.seed, epoch)) pos_order.push_back(pos_[static_cast<size_t>(k)]);
    } else {
      for (int64_t k : data::shuffled_indices(n_pos, o_.seed, kPositiveShuffle + epoch)) pos_order.push_back(pos_[static_cast<size_t>(k)]);
      minority_mass_ = static_cast<double>(train_.count(data::kMinority)) / static_cast<double>(std::max<int64_t>(1, n_pos));
    }
    std::vector<int64_t> neg_order;
    for (int64_t k : data::shuffled_indices(n_neg, o_.seed, epoch)) neg_order.push_back(neg_[static_cast<size_t>(k)]);
    // Each batch takes its share of both lists, positives first.
    const int64_t n = n_pos + n_neg, steps = (n + o_.batch_size - 1) / o_.batch_size;
    batches_.clear();
    for (int64_t b = 0; b < steps; ++b) {
      std::pair<std::vector<int64_t>, int64_t> batch;
      for (int64_t i = b * n_pos / steps; i < (b + 1) * n_pos / steps; ++i) batch.first.push_back(pos_order[static_cast<size_t>(i)]);
      batch.second = static_cast<int64_t>(batch.first.size());
      for (int64_t i = b * n_neg / steps; i < (b + 1) * n_neg / steps; ++i) batch.first.push_back(neg_order[static_cast<size_t>(i)]);
      if (!batch.first.empty()) batches_.push_back(std::move(batch));
    }
    std::reverse(batches_.begin(), batches_.end());  // taken from the back
    model_.train();
    loss_sum_ = cls_sum_ = vae_sum_ = 0;
    correct_ = seen_ = minority_seen_ = 0;
    return static_cast<int64_t>(batches_.size());
  }
  bool next_batch() override {
    if (batches_.empty()) return false;
    batch_ = std::move(batches_.back());
    batches_.pop_back();
    return true;
  }
  void queue_step() override {
    const Tensor x = data::gather_images(train_.data, batch_.first, data::Scale::Unit).to(device_);
    for (int64_t i = 0; i < batch_.second; ++i) minority_seen_ += train_.group[static_cast<size_t>(batch_.first[static_cast<size_t>(i)])] == data::kMinority;
    last_ = models::dbvae_train_step(model_, adam_, x, batch_.second, o_.debias, noise_);
    last_n_ = static_cast<int64_t>(batch_.first.size());
  }
  StepDone finish_step() override {
    StepDone done;
    const double n = static_cast<double>(last_n_);
    done.images = last_n_;
    done.scalars = {{"loss", last_.loss}, {"classification", last_.classification}, {"vae", last_.vae},
                    {"accuracy", static_cast<double>(last_.correct) / n}};
    if (!std::isfinite(last_.loss)) done.nonfinite = "the DB-VAE's loss became " + std::to_string(last_.loss);
    loss_sum_ += last_.loss * n;
    cls_sum_ += last_.classification * n;
    vae_sum_ += last_.vae * n;
    correct_ += last_.correct;
    seen_ += last_n_;
    return done;
  }
  std::string running_losses() const override {
    char text[96];
    std::snprintf(text, sizeof(text), "loss %.4f  accuracy %.4f", loss_sum_ / static_cast<double>(seen_),
                  static_cast<double>(correct_) / static_cast<double>(seen_));
    return text;
  }
  double lr() const override { return o_.lr; }
  void end_epoch(int64_t, const EpochTiming&) override {
    std::vector<float> logits;
    models::dbvae_encode_all(model_, test_images_, 1000, nullptr, &logits);
    acc_ = group_accuracy(logits, test_);
  }
  void save(int64_t epoch, CheckpointSet& set, const EpochTiming& t) override {
    save_module(set.stage("dbvae.safetensors"), model_,
                {{"config", c_.to_json()},
                 {"data", o_.data},
                 {"task", o_.task.to_json()},
                 {"debias", o_.debias ? "on" : "off"},
                 {"alpha", setting_text(o_.alpha)},
                 {"bins", std::to_string(o_.bins)},
                 {"epoch", std::to_string(epoch + 1)},
                 {"seed", std::to_string(o_.seed)},
                 {"lr", setting_text(o_.lr)},
                 {"batch_size", std::to_string(o_.batch_size)},
                 {"limit", std::to_string(o_.limit)},
                 {"test_accuracy", std::to_string(acc_.overall)},
                 {"test_accuracy_minority", std::to_string(acc_.minority)}});
    epoch_s_ = t.seconds_so_far();
    const double n = static_cast<double>(seen_);
    set.stage_metrics_line(nlohmann::json{{"epoch", epoch + 1},
                                          {"train_loss", loss_sum_ / n},
                                          {"train_classification", cls_sum_ / n},
                                          {"train_vae", vae_sum_ / n},
                                          {"train_accuracy", static_cast<double>(correct_) / n},
                                          {"test_accuracy", acc_.overall},
                                          {"test_accuracy_majority", acc_.majority},
                                          {"test_accuracy_minority", acc_.minority},
                                          {"test_accuracy_negative", acc_.negative},
                                          {"minority_weight_mass", minority_mass_},
                                          {"minority_drawn", minority_seen_},
                                          {"epoch_s", epoch_s_},
                                          {"img_per_s", n / t.train_s}}
                               .dump());
  }
  std::string summary(int64_t epoch, const EpochTiming& t) const override {
    char text[256];
    std::snprintf(text, sizeof(text),
                  "epoch %lld/%lld  loss %.4f  test accuracy %.4f (majority %.4f, minority %.4f, negative %.4f)  "
                  "minority drawn %lld  %.0f img/s  %.1f s",
                  static_cast<long long>(epoch + 1), static_cast<long long>(o_.epochs), loss_sum_ / static_cast<double>(seen_),
                  acc_.overall, acc_.majority, acc_.minority, acc_.negative, static_cast<long long>(minority_seen_),
                  static_cast<double>(seen_) / t.train_s, epoch_s_);
    return text;
  }

 private:
  const DbVaeTrainOptions& o_;
  const models::DbVaeConfig& c_;
  models::DbVae& model_;
  optim::Adam& adam_;
  Generator& noise_;
  const data::BiasedData& train_;
  const data::BiasedData& test_;
  const Tensor& positives_;
  const Tensor& test_images_;
  Device device_;
  std::vector<int64_t> pos_, neg_;
  std::vector<std::pair<std::vector<int64_t>, int64_t>> batches_;  // image indices, positives first; how many positives
  std::pair<std::vector<int64_t>, int64_t> batch_;
  models::DbVaeStepResult last_;
  int64_t last_n_ = 0;
  GroupAccuracy acc_;
  double loss_sum_ = 0, cls_sum_ = 0, vae_sum_ = 0, epoch_s_ = 0, minority_mass_ = 0;
  int64_t correct_ = 0, seen_ = 0, minority_seen_ = 0;
};

Tensor all_images(const data::Dataset& d, const std::vector<int64_t>& idx, Device device) {
  return data::gather_images(d, idx, data::Scale::Unit).to(device);
}

}  // namespace

std::vector<int64_t> weighted_draw(const std::vector<double>& weights, int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<double> cdf(weights.size());
  double total = 0;
  for (size_t i = 0; i < weights.size(); ++i) cdf[i] = total += weights[i];
  std::vector<int64_t> out(static_cast<size_t>(std::max<int64_t>(n, 0)));
  if (weights.empty()) return {};
  const uint64_t stream = static_cast<uint64_t>(kDrawStream + epoch);
  for (int64_t k = 0; k < n; ++k) {
    // A uniform in [0, 1) from 53 bits of two raw numbers, scaled to the total (which is 1 up to rounding).
    const uint64_t hi = philox_raw(seed, stream, static_cast<uint64_t>(2 * k)), lo = philox_raw(seed, stream, static_cast<uint64_t>(2 * k + 1));
    const double u = static_cast<double>(((hi << 32) | lo) >> 11) * 0x1.0p-53 * total;
    const size_t i = static_cast<size_t>(std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    out[static_cast<size_t>(k)] = static_cast<int64_t>(std::min(i, weights.size() - 1));
  }
  return out;
}

void run_train_dbvae(const DbVaeTrainOptions& o) {
  check_training_flags(o.epochs, o.batch_size, 2, o.lr, o.limit);
  if (o.bins < 1 || o.bins > 100000) throw std::invalid_argument("--bins must be in 1..100000, got " + std::to_string(o.bins));
  if (!(o.alpha >= 0.0) || !std::isfinite(o.alpha)) throw std::invalid_argument("--alpha must be a finite number >= 0, got " + setting_text(o.alpha));
  const Device device = apply_device_flags(o.device);
  TrainingDir run_dir(o.out);
  data::Dataset source = data::load_dataset(o.data, data::Split::Train);
  data::Dataset source_test = data::load_dataset(o.data, data::Split::Test, source.height);
  source_test.keep_first(o.test_limit);
  if (source.labels.empty()) throw std::invalid_argument("a DB-VAE needs class labels; " + o.data + " has none");
  source.keep_first(o.limit);
  int64_t classes = static_cast<int64_t>(source.class_names.size());
  for (int32_t l : source.labels) classes = std::max<int64_t>(classes, l + 1);
  o.task.validate(classes);
  const data::BiasedData train = data::make_biased_binary(source, o.task, true);
  const data::BiasedData test = data::make_biased_binary(source_test, o.task, false);
  models::DbVaeConfig c;
  c.channels = train.data.channels;
  c.height = train.data.height;
  c.width = train.data.width;
  c.hidden = o.hidden;
  c.latent_dim = o.latent_dim;
  c.validate();
  const std::string path = (fs::path(o.out) / "dbvae.safetensors").string();
  run_dir.open();
  if (fs::exists(path)) throw std::invalid_argument(o.out + " already holds a DB-VAE: choose another --out");

  Generator init(o.seed, kVaeInit), noise(o.seed, kVaeNoise);
  models::DbVae model(c, init);
  model.to(device);
  optim::Adam adam(model.parameters(), {.lr = o.lr});
  std::vector<int64_t> pos, every(static_cast<size_t>(test.data.n));
  for (int64_t i = 0; i < train.data.n; ++i) {
    if (train.data.labels[static_cast<size_t>(i)] == 1) pos.push_back(i);
  }
  for (int64_t i = 0; i < test.data.n; ++i) every[static_cast<size_t>(i)] = i;
  const Tensor positives = all_images(train.data, pos, device), test_images = all_images(test.data, every, device);
  std::cerr << "latentlab: training the " << (o.debias ? "DB-VAE" : "plain classifier (--debias off)") << " ("
            << model.num_parameters() << " parameters) on " << o.data << ": " << train.count(data::kMajority)
            << " majority + " << train.count(data::kMinority) << " minority positives, " << train.count(data::kNegative)
            << " negatives (test: " << test.count(data::kMajority) << " + " << test.count(data::kMinority) << " + "
            << test.count(data::kNegative) << "), " << device_name(device) << ", batch " << o.batch_size << ", lr " << o.lr
            << (o.debias ? ", bins " + std::to_string(o.bins) + ", alpha " + setting_text(o.alpha) : std::string())
            << ", seed " << o.seed << "\n";
  DbVaeSteps steps{o, c, model, adam, noise, train, test, positives, test_images, device};
  LoopOptions loop(o.out, 0, o.epochs, o.log_every);
  loop.saved_phrase = [&](int64_t saved_epoch) {
    return saved_epoch > 0 ? "the last complete model is epoch " + std::to_string(saved_epoch) + " in " + path +
                                 " (a DB-VAE does not resume: train again into another --out)"
                           : "no epoch was complete, so nothing was saved in " + o.out;
  };
  run_epochs(steps, loop);
  std::cerr << "latentlab: wrote " << path << " and metrics.jsonl; `latentlab debias-report " << o.out
            << " --out DIR` measures it per subgroup\n";
}

}  // namespace ll::app
