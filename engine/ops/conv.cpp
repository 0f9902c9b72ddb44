#include "engine/ops/conv.h"

#include "engine/autograd.h"
#include "engine/ops/dispatch.h"
#include "kernels/bias.h"
#include "kernels/conv2d.h"
#include "kernels/conv_transpose2d.h"
#include "kernels/pad.h"

namespace ll {

namespace {
void check_conv_args(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, int64_t w_in_dim,
                     int64_t out_channels, Pair stride, Pair padding) {
  check_arg(x.dim() == 4, op, "input must be (N, C, H, W), got " + x.str());
  check_arg(w.dim() == 4, op, "weight must be 4-D, got " + w.str());
  check_arg(w.size(w_in_dim) == x.size(1), op,
            "weight " + w.str() + " expects " + std::to_string(w.size(w_in_dim)) + " input channels, input " +
                x.str() + " has " + std::to_string(x.size(1)));
  check_arg(stride[0] >= 1 && stride[1] >= 1, op, "stride must be >= 1");
  check_arg(padding[0] >= 0 && padding[1] >= 0, op, "padding must be >= 0");
  if (b.defined()) {
    check_arg(b.dim() == 1 && b.size(0) == out_channels, op,
              "bias " + b.str() + " does not match " + std::to_string(out_channels) + " output channels");
  }
  check_same_device(op, {&x, &w, &b});
}
// dL/dbias of a convolution: the output gradient summed over batch and positions, or undefined
// where no bias gradient is needed.
Tensor bias_grad(const Tensor& g, bool needed) {
  if (!needed) return Tensor();
  const int64_t N = g.size(0), K = g.size(1);
  Tensor gb = Tensor::empty({K}, g.device());
  LL_KERNEL(g.device(), bias_backward, g.data(), gb.data(), N, K, g.numel() / (N * K > 0 ? N * K : 1));
  return gb;
}
}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Pair padding) {
  check_conv_args("conv2d", x, weight, bias, 1, weight.dim() == 4 ? weight.size(0) : 0, stride, padding);
  kernels::Conv2dShape s;
  s.N = x.size(0);
  s.C = x.size(1);
  s.H = x.size(2);
  s.W = x.size(3);
  s.K = weight.size(0);
  s.R = weight.size(2);
  s.S = weight.size(3);
  s.stride_h = stride[0];
  s.stride_w = stride[1];
  s.pad_h = padding[0];
  s.pad_w = padding[1];
  check_arg(s.H + 2 * s.pad_h >= s.R && s.W + 2 * s.pad_w >= s.S, "conv2d",
            "kernel " + std::to_string(s.R) + "x" + std::to_string(s.S) + " larger than the padded input " + x.str());
  Tensor y = Tensor::empty({s.N, s.K, s.P(), s.Q()}, x.device());
  LL_KERNEL(y.device(), conv2d_forward, s, x.data(), weight.data(), bias.defined() ? bias.data() : nullptr, y.data());

  // Each gradient is computed only where it is needed: not the input's for the data fed to the
  // first layer, not the weight's and bias's for a frozen layer (nn::FrozenParameters), which then
  // does not keep its input alive either.
  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  return record(y, "conv2d", {x, weight, bias},
                [x = need_w ? x.detach() : Tensor(), w = weight.detach(), s, need_b, need_x, need_w](const Tensor& g) {
    Tensor gx, gw;
    if (need_x) {
      gx = Tensor::empty({s.N, s.C, s.H, s.W}, g.device());
      LL_KERNEL(g.device(), conv2d_backward_data, s, g.data(), w.data(), gx.data());
    }
    if (need_w) {
      gw = Tensor::empty(w.shape(), g.device());
      LL_KERNEL(g.device(), conv2d_backward_weight, s, x.data(), g.data(), gw.data());
    }
    return std::vector<Tensor>{gx, gw, bias_grad(g, need_b)};
  });
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Pair stride, Pair padding,
                        Pair output_padding) {
  check_conv_args("conv_transpose2d", x, weight, bias, 0, weight.dim() == 4 ? weight.size(1) : 0, stride, padding);
  // PyTorch's rule: output_padding must be smaller than the stride (or the dilation).
  check_arg(output_padding[0] >= 0 && output_padding[1] >= 0 && output_padding[0] < stride[0] &&
                output_padding[1] < stride[1],
            "conv_transpose2d", "output_padding must be >= 0 and smaller than the stride");
  kernels::ConvTranspose2dShape s;
  s.N = x.size(0);
  s.C = x.size(1);
  s.H = x.size(2);
  s.W = x.size(3);
  s.K = weight.size(1);
  s.R = weight.size(2);
  s.S = weight.size(3);
  s.stride_h = stride[0];
  s.stride_w = stride[1];
  s.pad_h = padding[0];
  s.pad_w = padding[1];
  s.output_padding_h = output_padding[0];
  s.output_padding_w = output_padding[1];
  check_arg(s.P() > 0 && s.Q() > 0, "conv_transpose2d", "output would be empty for input " + x.str());
  Tensor y = Tensor::empty({s.N, s.K, s.P(), s.Q()}, x.device());
  LL_KERNEL(y.device(), conv_transpose2d_forward, s, x.data(), weight.data(), bias.defined() ? bias.data() : nullptr,
            y.data());

  // As conv2d: only the gradients that are needed.
  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  return record(y, "conv_transpose2d", {x, weight, bias},
                [x = need_w ? x.detach() : Tensor(), w = weight.detach(), s, need_b, need_x, need_w](const Tensor& g) {
                  Tensor gx, gw;
                  if (need_x) {
                    gx = Tensor::empty({s.N, s.C, s.H, s.W}, g.device());
                    LL_KERNEL(g.device(), conv_transpose2d_backward_data, s, g.data(), w.data(), gx.data());
                  }
                  if (need_w) {
                    gw = Tensor::empty(w.shape(), g.device());
                    LL_KERNEL(g.device(), conv_transpose2d_backward_weight, s, x.data(), g.data(), gw.data());
                  }
                  return std::vector<Tensor>{gx, gw, bias_grad(g, need_b)};
                });
}

Tensor pad2d(const Tensor& x, std::array<int64_t, 4> padding) {
  check_arg(x.dim() == 4, "pad2d", "input must be (N, C, H, W), got " + x.str());
  for (int64_t p : padding) check_arg(p >= 0, "pad2d", "padding must be >= 0");
  check_same_device("pad2d", {&x});
  kernels::Pad2dShape s;
  s.N = x.size(0);
  s.C = x.size(1);
  s.H = x.size(2);
  s.W = x.size(3);
  s.top = padding[0];
  s.bottom = padding[1];
  s.left = padding[2];
  s.right = padding[3];
  Tensor y = Tensor::empty({s.N, s.C, s.P(), s.Q()}, x.device());
  LL_KERNEL(y.device(), pad2d_forward, s, x.data(), y.data());
  return record(y, "pad2d", {x}, [s, shape = x.shape()](const Tensor& g) {
    Tensor gx = Tensor::empty(shape, g.device());
    LL_KERNEL(g.device(), pad2d_backward, s, g.data(), gx.data());
    return std::vector<Tensor>{gx};
  });
}

}  // namespace ll
