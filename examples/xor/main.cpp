#include <cstdio>

#include "engine/checkpoint.h"
#include "engine/nn/layers.h"
#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
using namespace ll;

int main() {
  Generator gen(0);
  nn::Sequential net{std::make_shared<nn::Linear>(2, 8, gen), std::make_shared<nn::Tanh>(),
                     std::make_shared<nn::Linear>(8, 1, gen)};
  optim::Adam adam(net.parameters(), {.lr = 0.05});
  Tensor x = Tensor::from_vector({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2});
  Tensor y = Tensor::from_vector({0, 1, 1, 0}, {4, 1});
  for (int step = 0; step < 600; ++step) {
    adam.zero_grad();
    Tensor loss = bce_with_logits(net.forward(x), y);
    loss.backward();
    adam.step();
  }
  const std::vector<float> p = sigmoid(net.forward(x)).to_vector();
  std::printf("xor: %.3f %.3f %.3f %.3f\n", p[0], p[1], p[2], p[3]);  // near 0 1 1 0
  save_module("xor.safetensors", net, {{"model", "xor-mlp"}});
}
