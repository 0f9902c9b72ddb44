#include "engine/nn/layers.h"

#include <string>

#include "engine/autograd.h"
#include "engine/nn/init.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/ops.h"
#include "kernels/elementwise.h"

namespace ll::nn {

namespace {
// Linear, Conv2d and ConvTranspose2d: a weight of `shape` and an optional bias of `bias_size`, with
// PyTorch's default initialization (init.h), registered as "weight" and "bias".
void add_weight_and_bias(Module& m, Tensor& weight, Tensor& bias, const Shape& shape, int64_t bias_size,
                         bool has_bias, Generator& gen) {
  weight = Tensor::empty(shape);
  init::default_weight_(weight, gen);
  m.register_parameter("weight", &weight);
  if (has_bias) {
    bias = Tensor::empty({bias_size});
    init::default_bias_(bias, init::fan_in(weight), gen);
    m.register_parameter("bias", &bias);
  }
}
}  // namespace

Linear::Linear(int64_t in_features, int64_t out_features, Generator& gen, bool has_bias) {
  check_arg(in_features > 0 && out_features > 0, "Linear", "feature counts must be positive");
  add_weight_and_bias(*this, weight, bias, {out_features, in_features}, out_features, has_bias, gen);
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, Pair kernel, Generator& gen, Pair stride_, Pair padding_,
               bool has_bias)
    : stride(stride_), padding(padding_) {
  check_arg(in_channels > 0 && out_channels > 0 && kernel[0] > 0 && kernel[1] > 0, "Conv2d",
            "channel counts and kernel size must be positive");
  add_weight_and_bias(*this, weight, bias, {out_channels, in_channels, kernel[0], kernel[1]}, out_channels, has_bias,
                      gen);
}

Tensor Conv2d::forward(const Tensor& x) { return conv2d(x, weight, bias, stride, padding); }

ConvTranspose2d::ConvTranspose2d(int64_t in_channels, int64_t out_channels, Pair kernel, Generator& gen, Pair stride_,
                                 Pair padding_, Pair output_padding_, bool has_bias)
    : stride(stride_), padding(padding_), output_padding(output_padding_) {
  check_arg(in_channels > 0 && out_channels > 0 && kernel[0] > 0 && kernel[1] > 0, "ConvTranspose2d",
            "channel counts and kernel size must be positive");
  // PyTorch's layout (in, out, kh, kw).
  add_weight_and_bias(*this, weight, bias, {in_channels, out_channels, kernel[0], kernel[1]}, out_channels, has_bias,
                      gen);
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  return conv_transpose2d(x, weight, bias, stride, padding, output_padding);
}

BatchNorm::BatchNorm(int64_t num_features, int64_t input_dims_, float eps_, float momentum_, bool affine)
    : eps(eps_), momentum(momentum_), input_dims(input_dims_) {
  check_arg(num_features > 0, "BatchNorm", "num_features must be positive");
  if (affine) {
    weight = Tensor::ones({num_features});
    bias = Tensor::zeros({num_features});
    register_parameter("weight", &weight);
    register_parameter("bias", &bias);
  }
  running_mean = Tensor::zeros({num_features});
  running_var = Tensor::ones({num_features});
  num_batches_tracked = Tensor::zeros({});
  register_buffer("running_mean", &running_mean);
  register_buffer("running_var", &running_var);
  register_buffer("num_batches_tracked", &num_batches_tracked);
}

Tensor BatchNorm::forward(const Tensor& x) {
  const bool ok = input_dims == 4 ? x.dim() == 4 : (x.dim() == 2 || x.dim() == 3);
  check_arg(ok, input_dims == 4 ? "BatchNorm2d" : "BatchNorm1d",
            std::string("expects ") + (input_dims == 4 ? "(N, C, H, W)" : "(N, C) or (N, C, L)") + " input, got " + x.str());
  if (is_training()) {
    // += 1 in place, on the buffer's device (no wait for the GPU).
    float* n = num_batches_tracked.data();
    LL_KERNEL(num_batches_tracked.device(), add_scalar, n, 1.0f, n, 1);
  }
  if (is_training() && sync != nullptr) {
    return sync_batch_norm(x, weight, bias, running_mean, running_var, sync, momentum, eps);
  }
  return batch_norm(x, weight, bias, running_mean, running_var, is_training(), momentum, eps);
}

std::shared_ptr<BatchNorm> BatchNorm1d(int64_t num_features, float eps, float momentum) {
  return std::make_shared<BatchNorm>(num_features, 2, eps, momentum);
}
std::shared_ptr<BatchNorm> BatchNorm2d(int64_t num_features, float eps, float momentum) {
  return std::make_shared<BatchNorm>(num_features, 4, eps, momentum);
}

InstanceNorm2d::InstanceNorm2d(int64_t num_features, float eps_, bool affine) : eps(eps_) {
  check_arg(num_features > 0, "InstanceNorm2d", "num_features must be positive");
  if (affine) {
    weight = Tensor::ones({num_features});
    bias = Tensor::zeros({num_features});
    register_parameter("weight", &weight);
    register_parameter("bias", &bias);
  }
}

Tensor InstanceNorm2d::forward(const Tensor& x) {
  check_arg(x.dim() == 4, "InstanceNorm2d", "expects (N, C, H, W) input, got " + x.str());
  return instance_norm(x, weight, bias, eps);
}

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim, Generator& gen) {
  check_arg(num_embeddings > 0 && embedding_dim > 0, "Embedding", "sizes must be positive");
  weight = Tensor::empty({num_embeddings, embedding_dim});
  init::normal_(weight, 0.0f, 1.0f, gen);
  register_parameter("weight", &weight);
}

Tensor Embedding::forward(const std::vector<int32_t>& indices) { return embedding(weight, indices); }

Dropout::Dropout(float p_, std::shared_ptr<Generator> gen) : p(p_), gen_(std::move(gen)) {
  check_arg(p >= 0.0f && p <= 1.0f, "Dropout", "probability must be in [0, 1]");
  check_arg(gen_ != nullptr, "Dropout", "needs a generator");
}

Tensor Dropout::forward(const Tensor& x) { return dropout(x, p, is_training(), *gen_); }

Tensor ReLU::forward(const Tensor& x) { return relu(x); }
Tensor LeakyReLU::forward(const Tensor& x) { return leaky_relu(x, negative_slope); }
Tensor Tanh::forward(const Tensor& x) { return tanh(x); }
Tensor Sigmoid::forward(const Tensor& x) { return sigmoid(x); }
Tensor Flatten::forward(const Tensor& x) { return x.flatten(1); }

Tensor Unflatten::forward(const Tensor& x) {
  Shape s{x.size(0)};
  s.insert(s.end(), shape.begin(), shape.end());
  return x.reshape(s);
}

Tensor ZeroPad2d::forward(const Tensor& x) { return pad2d(x, padding); }

Sequential::Sequential(std::initializer_list<std::shared_ptr<Layer>> layers) {
  for (auto& l : layers) push_back(l);
}

void Sequential::push_back(std::shared_ptr<Layer> layer) {
  register_module(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
}

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (auto& l : layers_) h = l->forward(h);
  return h;
}

}  // namespace ll::nn
