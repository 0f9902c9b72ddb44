#include "engine/ops/loss.h"

#include <memory>

#include "engine/autograd.h"
#include "engine/ops/dispatch.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/internal.h"
#include "kernels/elementwise.h"
#include "kernels/vae.h"

namespace ll {

// The upstream gradient g of a loss is one value (dL/dloss; 1 when the loss is what backward()
// starts from). On the CPU the backwards read it on the host and pass it to the kernel, as they
// always have. On CUDA it stays on the device: the kernel computes the gradient for gout = 1 and
// detail::scale_by multiplies g in on the device, so the host does not wait for the GPU in the
// middle of a backward pass. For g = 1 both give the same bits; otherwise they may differ by
// rounding (gout * k rounded once on the CPU, k then g on the GPU).

namespace {
void check_pair(const char* op, const Tensor& x, const Tensor& t) {
  check_arg(x.shape() == t.shape(), op, "input " + x.str() + " and target " + t.str() + " differ in shape");
  check_arg(x.numel() > 0, op, "empty input");
  check_same_device(op, {&x, &t});
}
}  // namespace

Tensor bce_with_logits(const Tensor& logits, const Tensor& target, Reduction r) {
  check_pair("bce_with_logits", logits, target);
  Tensor loss = Tensor::empty({}, logits.device());
  // The target gets no gradient (as in most uses; PyTorch would give one).
  if (!needs_grad({&logits})) {
    LL_KERNEL(logits.device(), bce_with_logits_forward, logits.data(), target.data(), logits.numel(), r, loss.data());
    return loss;
  }
  // One fused pass: the loss and dloss/dlogits; backward only scales the latter.
  Tensor gx = Tensor::empty_like(logits);
  LL_KERNEL(logits.device(), bce_with_logits_fused, logits.data(), target.data(), logits.numel(), r, loss.data(),
            gx.data());
  return record(loss, "bce_with_logits", {logits}, [gx](const Tensor& g) {
    return std::vector<Tensor>{detail::scale_by(gx, g)};
  });
}

Tensor mse_loss(const Tensor& x, const Tensor& target, Reduction r) {
  check_pair("mse_loss", x, target);
  Tensor loss = Tensor::empty({}, x.device());
  LL_KERNEL(x.device(), mse_forward, x.data(), target.data(), x.numel(), r, loss.data());
  return record(loss, "mse_loss", {x, target}, [x = x.detach(), t = target.detach(), r](const Tensor& g) {
    // d/dx = 2 (x - t) (/n); d/dt is its negative.
    Tensor gx = Tensor::empty_like(x);
    if (x.is_cpu()) {
      kernels::cpu::mse_backward(x.data(), t.data(), x.numel(), r, g.item(), gx.data());
    } else {
      LL_KERNEL(x.device(), mse_backward, x.data(), t.data(), x.numel(), r, 1.0f, gx.data());
      gx = detail::scale_by(gx, g);
    }
    Tensor gt = Tensor::empty_like(x);
    LL_KERNEL(x.device(), scale, gx.data(), -1.0f, gt.data(), gx.numel());
    return std::vector<Tensor>{gx, gt};
  });
}

Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& labels, Reduction r) {
  check_arg(logits.dim() == 2, "cross_entropy", "logits must be (N, C), got " + logits.str());
  const int64_t N = logits.size(0), C = logits.size(1);
  check_arg(static_cast<int64_t>(labels.size()) == N, "cross_entropy",
            std::to_string(labels.size()) + " labels for " + std::to_string(N) + " rows");
  check_arg(N > 0, "cross_entropy", "empty batch");
  // Checked here, on the host copy, for both devices (the CUDA kernels cannot throw).
  for (size_t i = 0; i < labels.size(); ++i) {
    check_arg(labels[i] >= 0 && labels[i] < C, "cross_entropy",
              "label " + std::to_string(labels[i]) + " at row " + std::to_string(i) + " is not in [0, " +
                  std::to_string(C) + ")");
  }
  check_same_device("cross_entropy", {&logits});
  // The labels where the kernels read them (a device copy for CUDA logits), shared with backward.
  auto lab = std::make_shared<const detail::Indices>(labels, logits.device());
  Tensor loss = Tensor::empty({}, logits.device());
  LL_KERNEL(logits.device(), softmax_cross_entropy_forward, logits.data(), lab->data(), N, C, r, loss.data());
  return record(loss, "cross_entropy", {logits}, [x = logits.detach(), lab, N, C, r](const Tensor& g) {
    Tensor gx = Tensor::empty_like(x);
    if (x.is_cpu()) {
      kernels::cpu::softmax_cross_entropy_backward(x.data(), lab->data(), N, C, r, g.item(), gx.data());
    } else {
      LL_KERNEL(x.device(), softmax_cross_entropy_backward, x.data(), lab->data(), N, C, r, 1.0f, gx.data());
      gx = detail::scale_by(gx, g);
    }
    return std::vector<Tensor>{gx};
  });
}

Tensor kl_normal(const Tensor& mu, const Tensor& logvar, float beta, Reduction r) {
  check_arg(mu.shape() == logvar.shape(), "kl_normal",
            "mu " + mu.str() + " and logvar " + logvar.str() + " differ in shape");
  check_arg(mu.dim() >= 1 && mu.numel() > 0, "kl_normal", "empty input " + mu.str());
  check_same_device("kl_normal", {&mu, &logvar});
  const float weight = r == Reduction::Mean ? beta / static_cast<float>(mu.size(0)) : beta;
  Tensor loss = Tensor::empty({}, mu.device());
  const bool grad = needs_grad({&mu, &logvar});
  // One pass: the value and weight * dKL/dmu, weight * dKL/dlogvar; backward only scales them.
  Tensor gmu = grad ? Tensor::empty_like(mu) : Tensor();
  Tensor glv = grad ? Tensor::empty_like(mu) : Tensor();
  LL_KERNEL(mu.device(), kl_normal_fused, mu.data(), logvar.data(), mu.numel(), weight, loss.data(),
            grad ? gmu.data() : nullptr, grad ? glv.data() : nullptr);
  return record(loss, "kl_normal", {mu, logvar}, [gmu, glv](const Tensor& g) {
    return std::vector<Tensor>{detail::scale_by(gmu, g), detail::scale_by(glv, g)};
  });
}

}  // namespace ll
