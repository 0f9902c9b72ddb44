#include "engine/ops/activation.h"

#include "engine/autograd.h"
#include "engine/ops/dispatch.h"
#include "kernels/activation.h"

namespace ll {

using kernels::Activation;

namespace {
// One forward/backward pair for all four: ReLU and LeakyReLU differentiate through their input,
// tanh and sigmoid through their output (cheaper, and what the formulas take).
Tensor activation(const char* op, Activation a, float slope, const Tensor& x) {
  check_same_device(op, {&x});
  Tensor y = Tensor::empty_like(x);
  LL_KERNEL(x.device(), activation_forward, a, slope, x.data(), y.data(), x.numel());
  const bool through_output = a == Activation::Tanh || a == Activation::Sigmoid;
  Tensor saved = through_output ? y.detach() : x.detach();
  return record(y, op, {x}, [a, slope, saved, through_output](const Tensor& g) {
    Tensor gx = Tensor::empty_like(g);
    LL_KERNEL(g.device(), activation_backward, a, slope, through_output ? nullptr : saved.data(),
              through_output ? saved.data() : nullptr, g.data(), gx.data(), g.numel());
    return std::vector<Tensor>{gx};
  });
}
}  // namespace

Tensor relu(const Tensor& x) { return activation("relu", Activation::ReLU, 0.0f, x); }
Tensor leaky_relu(const Tensor& x, float negative_slope) {
  return activation("leaky_relu", Activation::LeakyReLU, negative_slope, x);
}
Tensor tanh(const Tensor& x) { return activation("tanh", Activation::Tanh, 0.0f, x); }
Tensor sigmoid(const Tensor& x) { return activation("sigmoid", Activation::Sigmoid, 0.0f, x); }

}  // namespace ll
