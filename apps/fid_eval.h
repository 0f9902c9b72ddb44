// fid_eval.h: latentlab's Frechet distance (models/fid.h) on the features of its own classifier
// (models/classifier.h), as `latentlab fid` and `latentlab train dcgan|cgan` report it.
//
// A classifier run directory (`latentlab train classifier --data D --out DIR`) holds
// classifier.safetensors, whose metadata names the data set ("data") and the classifier's test
// accuracy ("test_accuracy"). The reference statistics are those of the data set's whole test
// split; the "floor" is the distance of the first n training images to the same reference: what
// real images of the same count score, the best a generator can hope for.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "models/classifier.h"
#include "models/fid.h"

namespace ll::app {

// Where `train dcgan|cgan` look for a classifier of data set `data` when none is named:
// runs/classifier-<data> under the current directory.
std::string default_classifier_dir(const std::string& data);

struct FidReport {
  double fid = 0;
  int64_t n = 0;
  std::vector<int64_t> histogram;           // predicted classes of the images
  double mean_confidence = 0;               // mean of the top softmax probability
  std::vector<double> per_class_accuracy;   // with intended labels: fraction classified as intended, per class
  nlohmann::json to_json(const std::vector<std::string>& class_names) const;
};

class FidEvaluator {
 public:
  // Loads the classifier in `classifier_dir` and the statistics of its data set's test split.
  // Throws std::runtime_error saying how to train one when the directory holds none.
  FidEvaluator(const std::string& classifier_dir, Device device);
  // images (N, C, S, S) in [0, 1] (any device); intended_labels (N) for a conditional generator, else empty.
  FidReport evaluate(const Tensor& images, const std::vector<int32_t>& intended_labels = {});
  // The first n training images of the classifier's data set against the same reference.
  FidReport floor(int64_t n);

  const std::string& data_name() const { return data_; }
  double classifier_accuracy() const { return accuracy_; }
  const std::vector<std::string>& class_names() const { return class_names_; }
  int64_t reference_count() const { return reference_.count; }
  const models::ClassifierConfig& classifier_config() const { return model_->config(); }

 private:
  std::unique_ptr<models::Classifier> model_;
  Device device_;
  std::string data_;
  double accuracy_ = 0;
  std::vector<std::string> class_names_;
  models::GaussianStats reference_;
};

}  // namespace ll::app
