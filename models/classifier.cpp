#include "models/classifier.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/ops/ops.h"
#include "models/config_count.h"

namespace ll::models {

void ClassifierConfig::validate() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("classifier: " + what);
  };
  need(channels == 1 || channels == 3, "channels must be 1 or 3, got " + std::to_string(channels));
  need(size >= 8 && size <= 128 && size % 4 == 0, "images must be square with a side in 8..128 divisible by 4, got " +
                                                       std::to_string(size));
  need(num_classes >= 2 && num_classes <= 1000, "num_classes must be in 2..1000");
  need(features >= 2, "features must be at least 2");
  need(dropout >= 0.0f && dropout < 1.0f, "dropout must be in [0, 1)");
  need(num_parameters() <= kMaxParameters, "the model would have more than " + std::to_string(kMaxParameters) +
                                               " parameters (features " + std::to_string(features) + ")");
}

int64_t ClassifierConfig::num_parameters() const {
  using config_count::add;
  using config_count::mul;
  const int64_t s4 = size / 4;
  return add({mul({channels, 32, 16}), 32,           // conv1: Conv(C, 32, 4x4)
              32 * 64 * 16, 64, 2 * 64,              // conv2: Conv(32, 64, 4x4); bn2's weight and bias
              mul({64, s4, s4, features}), features,  // fc1
              mul({features, num_classes}), num_classes});  // fc2
}

std::string ClassifierConfig::to_json() const {
  return nlohmann::json{{"model", "classifier"}, {"channels", channels}, {"size", size}, {"num_classes", num_classes},
                        {"features", features},  {"dropout", dropout}}
      .dump();
}

ClassifierConfig ClassifierConfig::from_json(const std::string& text) {
  try {
    const auto j = nlohmann::json::parse(text);
    if (j.at("model").get<std::string>() != "classifier") throw std::invalid_argument("not a classifier");
    // Each value's JSON type is checked before it is converted: nlohmann's get<int64_t>() of 1e300
    // (or of 2.5) would convert a double out of the integer's range, which is undefined behavior.
    auto integer = [&](const char* name) {
      const auto& v = j.at(name);
      if (!v.is_number_integer()) throw std::invalid_argument(std::string("'") + name + "' is not an integer");
      return v.get<int64_t>();
    };
    ClassifierConfig c;
    c.channels = integer("channels");
    c.size = integer("size");
    c.num_classes = integer("num_classes");
    c.features = integer("features");
    const auto& dropout = j.at("dropout");
    if (!dropout.is_number()) throw std::invalid_argument("'dropout' is not a number");
    const double p = dropout.get<double>();
    if (!(p >= 0.0 && p < 1.0)) throw std::invalid_argument("dropout must be in [0, 1), got " + std::to_string(p));
    c.dropout = static_cast<float>(p);
    c.validate();
    return c;
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("bad classifier configuration: ") + e.what());
  }
}

Classifier::Classifier(const ClassifierConfig& config, Generator& init) : config_(config) {
  config_.validate();
  const int64_t s4 = config_.size / 4;
  conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(config_.channels, 32, Pair{4, 4}, init, Pair{2, 2}, Pair{1, 1}));
  conv2_ = register_module("conv2", std::make_shared<nn::Conv2d>(32, 64, Pair{4, 4}, init, Pair{2, 2}, Pair{1, 1}));
  bn2_ = register_module("bn2", nn::BatchNorm2d(64));
  fc1_ = register_module("fc1", std::make_shared<nn::Linear>(64 * s4 * s4, config_.features, init));
  fc2_ = register_module("fc2", std::make_shared<nn::Linear>(config_.features, config_.num_classes, init));
  // The dropout masks: a stream of their own, derived from the init generator's seed.
  dropout_ = register_module("dropout", std::make_shared<nn::Dropout>(
                                            config_.dropout, std::make_shared<Generator>(init.seed(), init.subsequence() + 1000)));
}

Tensor Classifier::features(const Tensor& x) {
  const int64_t S = config_.size;
  check_arg(x.dim() == 4 && x.size(1) == config_.channels && x.size(2) == S && x.size(3) == S, "Classifier",
            "expects images (N, " + std::to_string(config_.channels) + ", " + std::to_string(S) + ", " +
                std::to_string(S) + "), got " + x.str());
  Tensor h = relu(conv1_->forward(x));
  h = relu(bn2_->forward(conv2_->forward(h)));
  return relu(fc1_->forward(h.reshape({x.size(0), -1})));
}

Tensor Classifier::forward(const Tensor& x) { return fc2_->forward(dropout_->forward(features(x))); }

std::vector<float> Classifier::logits_of_features(const Tensor& features) { return fc2_->forward(features).to_vector(); }

ClassifierStepResult classifier_train_step(Classifier& model, optim::Optimizer& opt, const Tensor& images,
                                           const std::vector<int32_t>& labels) {
  opt.zero_grad();
  const Tensor logits = model.forward(images);
  const Tensor loss = cross_entropy(logits, labels);
  loss.backward();
  opt.step();
  ClassifierStepResult r;
  r.loss = loss.item();
  const std::vector<float> l = logits.to_vector();
  const int64_t k = logits.size(1);
  for (size_t i = 0; i < labels.size(); ++i) {
    const float* row = l.data() + static_cast<int64_t>(i) * k;
    r.correct += std::max_element(row, row + k) - row == labels[i];
  }
  return r;
}

void classify(Classifier& model, const Tensor& images, int64_t batch_size, Tensor* features, Tensor* probabilities,
              std::vector<int32_t>* predictions) {
  NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const int64_t n = images.size(0), k = model.config().num_classes;
  std::vector<Tensor> feats;
  std::vector<float> probs;
  if (predictions) predictions->clear();
  for (int64_t b = 0; b < n; b += batch_size) {
    const Tensor x = images.slice(b, std::min(n, b + batch_size));
    const Tensor f = model.features(x);
    if (features) feats.push_back(f.to(Device::CPU));
    if (!probabilities && !predictions) continue;
    const std::vector<float> logits = model.logits_of_features(f);
    for (int64_t i = 0; i < x.size(0); ++i) {
      const float* row = logits.data() + i * k;
      const float top = *std::max_element(row, row + k);
      double z = 0;
      for (int64_t c = 0; c < k; ++c) z += std::exp(static_cast<double>(row[c] - top));
      for (int64_t c = 0; c < k; ++c) probs.push_back(static_cast<float>(std::exp(static_cast<double>(row[c] - top)) / z));
      if (predictions) predictions->push_back(static_cast<int32_t>(std::max_element(row, row + k) - row));
    }
  }
  if (features) *features = n > 0 ? cat(feats, 0) : Tensor::zeros({0, model.config().features});
  if (probabilities) *probabilities = Tensor::from_vector(probs, {n, k});
  model.train(was_training);
}

}  // namespace ll::models
