// layers.h: the layers of latentlab's models, with PyTorch's constructor arguments, parameter
// names and default initializations (torch/nn/modules/*.py). Each takes the Generator that draws
// its initial values.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <vector>

#include "engine/nn/module.h"
#include "engine/ops/conv.h"
#include "engine/ops/norm.h"
#include "engine/rng.h"

namespace ll::nn {

// y = x weight^T + bias; weight (out, in), bias (out).
class Linear : public Layer {
 public:
  Linear(int64_t in_features, int64_t out_features, Generator& gen, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
};

// weight (out, in, kh, kw), bias (out).
class Conv2d : public Layer {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel, Generator& gen, Pair stride = {1, 1},
         Pair padding = {0, 0}, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  Pair stride, padding;
};

// weight (in, out, kh, kw) [PyTorch's layout], bias (out).
class ConvTranspose2d : public Layer {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair kernel, Generator& gen, Pair stride = {1, 1},
                  Pair padding = {0, 0}, Pair output_padding = {0, 0}, bool bias = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  Pair stride, padding, output_padding;
};

// BatchNorm1d ((N, C) or (N, C, L)) and BatchNorm2d ((N, C, H, W)): weight = 1, bias = 0,
// running_mean = 0, running_var = 1, num_batches_tracked = 0 (kept as a float scalar here; written
// as int64 in checkpoints so that PyTorch's load_state_dict takes it).
class BatchNorm : public Layer {
 public:
  BatchNorm(int64_t num_features, int64_t input_dims, float eps = 1e-5f, float momentum = 0.1f, bool affine = true);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  float eps, momentum;
  int64_t input_dims;  // 2 or 3 for BatchNorm1d, 4 for BatchNorm2d
  // Set (dist::synchronize_batch_norm, engine/dist/data_parallel.h): training mode normalizes with
  // the statistics of the whole batch across the group's processes (sync_batch_norm, PyTorch's
  // SyncBatchNorm) instead of this process's shard. Eval mode is unchanged.
  std::shared_ptr<const BatchNormGroup> sync;
};
std::shared_ptr<BatchNorm> BatchNorm1d(int64_t num_features, float eps = 1e-5f, float momentum = 0.1f);
std::shared_ptr<BatchNorm> BatchNorm2d(int64_t num_features, float eps = 1e-5f, float momentum = 0.1f);

// InstanceNorm2d ((N, C, H, W)) as PyTorch's, track_running_stats = False: per sample and channel
// statistics in training and evaluation alike. affine: weight = 1, bias = 0 (PyTorch's default
// for InstanceNorm2d is affine = False; pix2pix's generator, whose BatchNorm at batch size 1 it
// stands for, has the affine parameters).
class InstanceNorm2d : public Layer {
 public:
  explicit InstanceNorm2d(int64_t num_features, float eps = 1e-5f, bool affine = false);
  Tensor forward(const Tensor& x) override;
  Tensor weight, bias;
  float eps;
};

// weight (num_embeddings, embedding_dim) ~ N(0, 1).
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim, Generator& gen);
  Tensor forward(const std::vector<int32_t>& indices);
  Tensor weight;
};

// Inverted dropout in training mode, identity in eval mode. Draws its masks from `gen`, which it
// shares (the training run's generator).
class Dropout : public Layer {
 public:
  Dropout(float p, std::shared_ptr<Generator> gen);
  Tensor forward(const Tensor& x) override;
  float p;

 private:
  std::shared_ptr<Generator> gen_;
};

class ReLU : public Layer {
 public:
  Tensor forward(const Tensor& x) override;
};
class LeakyReLU : public Layer {
 public:
  explicit LeakyReLU(float negative_slope = 0.01f) : negative_slope(negative_slope) {}
  Tensor forward(const Tensor& x) override;
  float negative_slope;
};
class Tanh : public Layer {
 public:
  Tensor forward(const Tensor& x) override;
};
class Sigmoid : public Layer {
 public:
  Tensor forward(const Tensor& x) override;
};
// (N, d1, d2, ...) -> (N, d1 * d2 * ...)
class Flatten : public Layer {
 public:
  Tensor forward(const Tensor& x) override;
};
// (N, prod(shape)) -> (N, shape...), PyTorch's nn.Unflatten(1, shape)
class Unflatten : public Layer {
 public:
  explicit Unflatten(Shape shape) : shape(std::move(shape)) {}
  Tensor forward(const Tensor& x) override;
  Shape shape;
};

// Zero padding {top, bottom, left, right} of (N, C, H, W) (PyTorch's nn.ZeroPad2d takes
// (left, right, top, bottom); this takes the rows first).
class ZeroPad2d : public Layer {
 public:
  explicit ZeroPad2d(std::array<int64_t, 4> padding) : padding(padding) {}
  Tensor forward(const Tensor& x) override;
  std::array<int64_t, 4> padding;
};

// Children named "0", "1", ... in order, as PyTorch's nn.Sequential.
class Sequential : public Layer {
 public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Layer>> layers);
  void push_back(std::shared_ptr<Layer> layer);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return layers_.size(); }
  Layer& operator[](size_t i) { return *layers_.at(i); }

 private:
  std::vector<std::shared_ptr<Layer>> layers_;
};

}  // namespace ll::nn
