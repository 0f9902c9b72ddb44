// classifier.h: the small image classifier behind latentlab's Frechet distance (models/fid.h).
//
// FID (Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local Nash
// equilibrium") compares the Gaussian statistics of a network's features on generated and on real
// images. The usual network, Inception-v3, is trained on ImageNet photographs and cannot be had
// here; on 28 x 28 grayscale data sets a classifier trained on the data set itself is the common
// stand-in. Ours is trained by the engine (`latentlab train classifier`), so the whole measurement
// is the project's own:
//
//   x (N, C, S, S) in [0, 1]
//   conv1 Conv(C, 32, 4, 2, 1) ReLU                  (32, S/2, S/2)
//   conv2 Conv(32, 64, 4, 2, 1) BatchNorm ReLU       (64, S/4, S/4)
//   flatten, fc1 Linear(64 S^2/16, 128) ReLU         the 128 features FID uses (penultimate layer)
//   Dropout(0.3), fc2 Linear(128, classes)           logits
//
// Parameter names (conv1.weight, bn2.running_mean, fc1.weight, ...) are PyTorch's for the same
// module, so a checkpoint loads into it 1:1.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/layers.h"
#include "engine/optim/optimizer.h"
#include "engine/rng.h"

namespace ll::models {

struct ClassifierConfig {
  int64_t channels = 1, size = 28;  // square images, size divisible by 4
  int64_t num_classes = 10;
  int64_t features = 128;
  float dropout = 0.3f;
  void validate() const;  // throws std::invalid_argument; at most kMaxParameters parameters
  std::string to_json() const;
  static ClassifierConfig from_json(const std::string& text);  // throws std::invalid_argument
  // The parameter count of the model this configuration builds (Classifier::num_parameters()),
  // saturating at INT64_MAX; meaningful for positive sizes.
  int64_t num_parameters() const;
  static constexpr int64_t kMaxParameters = int64_t{1} << 28;  // 268M: 1 GiB of float32 weights
};

class Classifier : public Module {
 public:
  Classifier(const ClassifierConfig& config, Generator& init);
  Tensor features(const Tensor& x);  // (N, C, S, S) in [0, 1] -> (N, features)
  Tensor forward(const Tensor& x);   // logits (N, classes)
  // The logits of features already computed (eval mode: no dropout), as a host vector (N x classes).
  std::vector<float> logits_of_features(const Tensor& features);
  const ClassifierConfig& config() const { return config_; }

 private:
  ClassifierConfig config_;
  std::shared_ptr<nn::Conv2d> conv1_, conv2_;
  std::shared_ptr<nn::BatchNorm> bn2_;
  std::shared_ptr<nn::Linear> fc1_, fc2_;
  std::shared_ptr<nn::Dropout> dropout_;
};

struct ClassifierStepResult {
  double loss = 0;      // mean cross-entropy of the batch
  int64_t correct = 0;  // argmax == label
};

// One Adam step on softmax cross-entropy.
ClassifierStepResult classifier_train_step(Classifier& model, optim::Optimizer& opt, const Tensor& images,
                                           const std::vector<int32_t>& labels);

// Features, softmax probabilities and predicted classes of `images` ([0, 1]) in eval mode, batch
// by batch; any of the outputs may be null.
void classify(Classifier& model, const Tensor& images, int64_t batch_size, Tensor* features, Tensor* probabilities,
              std::vector<int32_t>* predictions);

}  // namespace ll::models
