// pad.h: zero padding of the two spatial dimensions of (N, C, H, W), by different amounts on each
// side: what TensorFlow/Keras's padding="same" does for even kernels or strides (the extra row and
// column go after: bottom and right), which symmetric convolution padding cannot express.
//   y (N, C, H + top + bottom, W + left + right), x placed at (top, left), zeros around it.
#pragma once
#include "kernels/cuda_runtime.h"
#include <cstdint>

namespace ll::kernels {

struct Pad2dShape {
  int64_t N = 1, C = 1, H = 1, W = 1;
  int64_t top = 0, bottom = 0, left = 0, right = 0;
  int64_t P() const { return H + top + bottom; }
  int64_t Q() const { return W + left + right; }
};

namespace cpu {
void pad2d_forward(const Pad2dShape& s, const float* x, float* y);
// The adjoint: gx = the (H, W) window of gy at (top, left).
void pad2d_backward(const Pad2dShape& s, const float* gy, float* gx);
}  // namespace cpu

namespace cuda {
// The CUDA twins (kernels/cuda/pad.cu): the arguments of cpu::, device pointers, on `stream`.
void pad2d_forward(const Pad2dShape& s, const float* x, float* y, Stream stream);
void pad2d_backward(const Pad2dShape& s, const float* gy, float* gx, Stream stream);
}  // namespace cuda

}  // namespace ll::kernels
