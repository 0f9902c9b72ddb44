// activation.cpp: CPU reference of the pointwise activations (kernels/activation.h).
// One loop per activation, so the switch is taken once per call rather than once per element;
// the arithmetic is ll::f:: in kernels/common/formulas.h, shared with the CUDA kernels.
// `simd` lets GCC if-convert the x > 0 selects of ReLU into vector blends (without it the loops
// stay scalar branches, mispredicted half the time on activations of either sign). It does not
// change any result: each element is still computed on its own by the same formula.
#include "kernels/activation.h"

#include "kernels/common/formulas.h"
#include "kernels/cpu/parallel.h"

namespace ll::kernels::cpu {

void activation_forward(Activation a, float slope, const float* x, float* y, int64_t n) {
  switch (a) {
    case Activation::ReLU:
#pragma omp parallel for simd if (n >= kParallelGrain)
      for (int64_t i = 0; i < n; ++i) y[i] = f::relu(x[i]);
      break;
    case Activation::LeakyReLU:
#pragma omp parallel for simd if (n >= kParallelGrain)
      for (int64_t i = 0; i < n; ++i) y[i] = f::leaky_relu(x[i], slope);
      break;
    case Activation::Tanh:
#pragma omp parallel for simd if (n >= kParallelGrain)
      for (int64_t i = 0; i < n; ++i) y[i] = f::tanh_(x[i]);
      break;
    case Activation::Sigmoid:
#pragma omp parallel for simd if (n >= kParallelGrain)
      for (int64_t i = 0; i < n; ++i) y[i] = f::sigmoid(x[i]);
      break;
  }
}

void activation_backward(Activation a, float slope, const float* x, const float* y, const float* gy,
                         float* gx, int64_t n) {
  switch (a) {
    case Activation::ReLU:  // reads x
#pragma omp parallel for simd if (n >= kParallelGrain)
      for (int64_t i = 0; i < n; ++i) gx[i] = f::relu_grad(x[i], gy[i]);
      break;
    case Activation::LeakyReLU:  // reads x
#pragma omp parallel for simd if (n >= kParallelGrain)
      for (int64_t i = 0; i < n; ++i) gx[i] = f::leaky_relu_grad(x[i], gy[i], slope);
      break;
    case Activation::Tanh:  // reads y = tanh(x)
#pragma omp parallel for simd if (n >= kParallelGrain)
      for (int64_t i = 0; i < n; ++i) gx[i] = f::tanh_grad_from_y(y[i], gy[i]);
      break;
    case Activation::Sigmoid:  // reads y = sigmoid(x)
#pragma omp parallel for simd if (n >= kParallelGrain)
      for (int64_t i = 0; i < n; ++i) gx[i] = f::sigmoid_grad_from_y(y[i], gy[i]);
      break;
  }
}

}  // namespace ll::kernels::cpu
