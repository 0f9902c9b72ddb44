// conv.h: 2-D convolution and transposed convolution, NCHW, with PyTorch's argument conventions.
#pragma once
#include <array>
#include <cstdint>

#include "engine/tensor.h"

namespace ll {

using Pair = std::array<int64_t, 2>;  // (height, width)

// x (N, C, H, W), weight (K, C, R, S), bias (K) or undefined -> (N, K, P, Q); see kernels/conv2d.h.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(), Pair stride = {1, 1},
              Pair padding = {0, 0});
// x (N, C, H, W), weight (C, K, R, S), bias (K) or undefined -> (N, K, P, Q),
// P = (H - 1) stride - 2 padding + R + output_padding; see kernels/conv_transpose2d.h.
Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                        Pair stride = {1, 1}, Pair padding = {0, 0}, Pair output_padding = {0, 0});

// Zero padding of a (N, C, H, W) tensor: {top, bottom, left, right} rows and columns (each >= 0).
// Keras's padding="same" with an even kernel or a stride puts the extra one after (bottom, right).
Tensor pad2d(const Tensor& x, std::array<int64_t, 4> padding);

}  // namespace ll
