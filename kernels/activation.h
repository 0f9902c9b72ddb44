// activation.h: pointwise activations. Formulas in kernels/common/formulas.h.
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>

namespace ll::kernels {

enum class Activation { ReLU, LeakyReLU, Tanh, Sigmoid };

namespace cpu {
// y = act(x). `slope` is used by LeakyReLU only.
void activation_forward(Activation a, float slope, const float* x, float* y, int64_t n);
// gx = act'(x) * gy. ReLU/LeakyReLU read x, Tanh/Sigmoid read y (the forward output); the other
// pointer may be nullptr.
void activation_backward(Activation a, float slope, const float* x, const float* y, const float* gy,
                         float* gx, int64_t n);
}  // namespace cpu

namespace cuda {
// The CUDA twins (kernels/cuda/activation.cu): the arguments of cpu::, device pointers, on `stream`.
void activation_forward(Activation a, float slope, const float* x, float* y, int64_t n,
                        Stream stream);
void activation_backward(Activation a, float slope, const float* x, const float* y, const float* gy,
                         float* gx, int64_t n, Stream stream);
}  // namespace cuda

}  // namespace ll::kernels
