#include "apps/fid_eval.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <numeric>
#include <stdexcept>

#include "data/loader.h"
#include "engine/checkpoint.h"

namespace ll::app {

namespace fs = std::filesystem;

namespace {
constexpr int64_t kBatch = 500;

Tensor dataset_images(const data::Dataset& d, int64_t n) {
  std::vector<int64_t> idx(static_cast<size_t>(std::min(n, d.n)));
  std::iota(idx.begin(), idx.end(), int64_t{0});
  return data::gather_images(d, idx, data::Scale::Unit);
}
}  // namespace

std::string default_classifier_dir(const std::string& data) {
  std::string name = fs::path(data).filename().string();
  if (name.empty()) name = fs::path(data).parent_path().filename().string();
  return (fs::path("runs") / ("classifier-" + name)).string();
}

nlohmann::json FidReport::to_json(const std::vector<std::string>& class_names) const {
  nlohmann::json j{{"fid", fid}, {"n", n}, {"class_histogram", histogram}, {"mean_confidence", mean_confidence}};
  if (!class_names.empty()) j["class_names"] = class_names;
  if (!per_class_accuracy.empty()) {
    j["per_class_accuracy"] = per_class_accuracy;
    j["mean_class_accuracy"] =
        std::accumulate(per_class_accuracy.begin(), per_class_accuracy.end(), 0.0) / static_cast<double>(per_class_accuracy.size());
  }
  return j;
}

FidEvaluator::FidEvaluator(const std::string& classifier_dir, Device device) : device_(device) {
  const std::string path = (fs::path(classifier_dir) / "classifier.safetensors").string();
  if (!fs::exists(path)) {
    throw std::runtime_error("no classifier in " + classifier_dir +
                             ": train one with `latentlab train classifier --data DATA --out " + classifier_dir + "`");
  }
  Metadata meta;
  const auto tensors = load_tensors(path, &meta);
  models::ClassifierConfig c;
  try {
    c = models::ClassifierConfig::from_json(meta["config"]);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  check_holds_parameters(path, tensors, c.num_parameters());
  Generator init(0);  // replaced by the checkpoint's values
  model_ = std::make_unique<models::Classifier>(c, init);
  try {
    model_->load_state_dict(tensors);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  model_->to(device_);
  model_->eval();
  data_ = meta["data"];
  if (data_.empty()) throw std::runtime_error(path + ": the metadata names no data set (\"data\")");
  accuracy_ = 0.0;
  if (meta.count("test_accuracy")) {
    char* end = nullptr;
    const std::string& text = meta["test_accuracy"];
    accuracy_ = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !(accuracy_ >= 0.0 && accuracy_ <= 1.0)) {
      throw std::runtime_error(path + ": the metadata's \"test_accuracy\" is \"" + text.substr(0, 40) +
                               "\", not a number in [0, 1] (a damaged or edited file)");
    }
  }
  const data::Dataset test = data::load_dataset(data_, data::Split::Test, c.size);
  class_names_ = test.class_names;
  Tensor features;
  models::classify(*model_, dataset_images(test, test.n).to(device_), kBatch, &features, nullptr, nullptr);
  reference_ = models::gaussian_stats(features);
}

FidReport FidEvaluator::evaluate(const Tensor& images, const std::vector<int32_t>& intended_labels) {
  const auto& c = model_->config();
  if (images.dim() != 4 || images.size(1) != c.channels || images.size(2) != c.size || images.size(3) != c.size) {
    throw std::invalid_argument("fid: the classifier of " + data_ + " takes (N, " + std::to_string(c.channels) + ", " +
                                std::to_string(c.size) + ", " + std::to_string(c.size) + ") images, got " + images.str());
  }
  if (images.size(0) < 2) throw std::invalid_argument("fid: needs at least 2 images");
  if (!intended_labels.empty() && static_cast<int64_t>(intended_labels.size()) != images.size(0)) {
    throw std::invalid_argument("fid: " + std::to_string(intended_labels.size()) + " labels for " +
                                std::to_string(images.size(0)) + " images");
  }
  Tensor features, probs;
  std::vector<int32_t> pred;
  models::classify(*model_, images.to(device_), kBatch, &features, &probs, &pred);
  FidReport r;
  r.n = images.size(0);
  r.fid = models::frechet_distance(models::gaussian_stats(features), reference_);
  r.histogram.assign(static_cast<size_t>(c.num_classes), 0);
  for (int32_t p : pred) ++r.histogram[static_cast<size_t>(p)];
  const std::vector<float> pv = probs.to_vector();
  double conf = 0;
  for (int64_t i = 0; i < r.n; ++i) {
    conf += *std::max_element(pv.begin() + i * c.num_classes, pv.begin() + (i + 1) * c.num_classes);
  }
  r.mean_confidence = conf / static_cast<double>(r.n);
  if (!intended_labels.empty()) {
    std::vector<int64_t> hit(static_cast<size_t>(c.num_classes), 0), total(static_cast<size_t>(c.num_classes), 0);
    for (size_t i = 0; i < pred.size(); ++i) {
      const int32_t want = intended_labels[i];
      if (want < 0 || want >= c.num_classes) throw std::invalid_argument("fid: label " + std::to_string(want) + " is not a class");
      ++total[static_cast<size_t>(want)];
      hit[static_cast<size_t>(want)] += pred[i] == want;
    }
    for (int64_t k = 0; k < c.num_classes; ++k) {
      const size_t i = static_cast<size_t>(k);
      r.per_class_accuracy.push_back(total[i] ? static_cast<double>(hit[i]) / static_cast<double>(total[i]) : 0.0);
    }
  }
  return r;
}

FidReport FidEvaluator::floor(int64_t n) {
  const data::Dataset train = data::load_dataset(data_, data::Split::Train, model_->config().size);
  return evaluate(dataset_images(train, n));
}

}  // namespace ll::app
