#include "engine/ops/linear.h"

#include "engine/autograd.h"
#include "engine/ops/dispatch.h"
#include "kernels/bias.h"
#include "kernels/gemm.h"

namespace ll {

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_arg(a.dim() == 2 && b.dim() == 2 && a.size(1) == b.size(0), "matmul",
            "expects (M, K) @ (K, N), got " + a.str() + " @ " + b.str());
  check_same_device("matmul", {&a, &b});
  const int64_t M = a.size(0), K = a.size(1), N = b.size(1);
  Tensor y = Tensor::empty({M, N}, a.device());
  LL_KERNEL(y.device(), gemm, false, false, M, N, K, 1.0f, a.data(), b.data(), 0.0f, y.data());
  const bool need_a = a.requires_grad(), need_b = b.requires_grad();
  return record(y, "matmul", {a, b}, [a = a.detach(), b = b.detach(), M, N, K, need_a, need_b](const Tensor& g) {
    Tensor ga, gb;
    if (need_a) {  // ga = g (M, N) @ b^T (N, K)
      ga = Tensor::empty({M, K}, g.device());
      LL_KERNEL(g.device(), gemm, false, true, M, K, N, 1.0f, g.data(), b.data(), 0.0f, ga.data());
    }
    if (need_b) {  // gb = a^T (K, M) @ g (M, N)
      gb = Tensor::empty({K, N}, g.device());
      LL_KERNEL(g.device(), gemm, true, false, K, N, M, 1.0f, a.data(), g.data(), 0.0f, gb.data());
    }
    return std::vector<Tensor>{ga, gb};
  });
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_arg(x.dim() == 2 && weight.dim() == 2 && x.size(1) == weight.size(1), "linear",
            "expects x (N, in) and weight (out, in), got x " + x.str() + ", weight " + weight.str());
  const int64_t N = x.size(0), in = x.size(1), out = weight.size(0);
  if (bias.defined()) {
    check_arg(bias.dim() == 1 && bias.size(0) == out, "linear",
              "bias " + bias.str() + " does not match " + std::to_string(out) + " outputs");
  }
  check_same_device("linear", {&x, &weight, &bias});
  Tensor y = Tensor::empty({N, out}, x.device());
  // y (N, out) = x (N, in) @ weight^T (in, out)
  LL_KERNEL(y.device(), gemm, false, true, N, out, in, 1.0f, x.data(), weight.data(), 0.0f, y.data());
  if (bias.defined()) LL_KERNEL(y.device(), bias_add, y.data(), bias.data(), N, out, 1);

  // Each gradient only where it is needed: not the input's for the data fed to the first layer,
  // not the weight's and bias's for a frozen layer (nn::FrozenParameters), which then does not keep
  // its input alive either.
  const bool need_x = x.requires_grad(), need_w = weight.requires_grad();
  const bool need_b = bias.defined() && bias.requires_grad();
  return record(y, "linear", {x, weight, bias},
                [x = need_w ? x.detach() : Tensor(), w = weight.detach(), need_b, need_x, need_w, N, in, out](const Tensor& g) {
                  Tensor gx, gw;
                  if (need_x) {  // gx (N, in) = g (N, out) @ weight (out, in)
                    gx = Tensor::empty({N, in}, g.device());
                    LL_KERNEL(g.device(), gemm, false, false, N, in, out, 1.0f, g.data(), w.data(), 0.0f, gx.data());
                  }
                  if (need_w) {  // gw (out, in) = g^T (out, N) @ x (N, in)
                    gw = Tensor::empty({out, in}, g.device());
                    LL_KERNEL(g.device(), gemm, true, false, out, in, N, 1.0f, g.data(), x.data(), 0.0f, gw.data());
                  }
                  Tensor gb;
                  if (need_b) {
                    gb = Tensor::empty({out}, g.device());
                    LL_KERNEL(g.device(), bias_backward, g.data(), gb.data(), N, out, 1);
                  }
                  return std::vector<Tensor>{gx, gw, gb};
                });
}

}  // namespace ll
