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

namespace {
// Reduction::None of the losses with a target: out[i] = l(x[i], t[i]) from `values`, and, when x
// needs a gradient, dl/dx per element (the reduced backward with Sum and gout = 1) from `derivs`;
// backward multiplies it by the upstream gradient element by element. `target_grad`: the target
// gets the negated gradient (mse, whose loss is symmetric in x and t); else none.
template <typename Values, typename Derivs>
Tensor elementwise_loss(const char* op, const Tensor& x, const Tensor& t, bool target_grad, Values values, Derivs derivs) {
  Tensor out = Tensor::empty_like(x);
  values(out);
  const bool grad = target_grad ? needs_grad({&x, &t}) : needs_grad({&x});
  if (!grad) return out;
  Tensor d = Tensor::empty_like(x);
  derivs(d);
  const std::vector<Tensor> inputs = target_grad ? std::vector<Tensor>{x, t} : std::vector<Tensor>{x};
  return record(out, op, inputs, [d, target_grad](const Tensor& g) {
    Tensor gx = Tensor::empty_like(d);
    LL_KERNEL(d.device(), mul, d.data(), g.data(), gx.data(), d.numel());
    if (!target_grad) return std::vector<Tensor>{gx};
    Tensor gt = Tensor::empty_like(d);
    LL_KERNEL(d.device(), scale, gx.data(), -1.0f, gt.data(), gx.numel());
    return std::vector<Tensor>{gx, gt};
  });
}
}  // namespace

Tensor bce_with_logits(const Tensor& logits, const Tensor& target, Reduction r) {
  check_pair("bce_with_logits", logits, target);
  if (r == Reduction::None) {
    return elementwise_loss(
        "bce_with_logits", logits, target, false,
        [&](Tensor& out) { LL_KERNEL(logits.device(), bce_with_logits_elementwise, logits.data(), target.data(), logits.numel(), out.data()); },
        [&](Tensor& d) {
          LL_KERNEL(logits.device(), bce_with_logits_backward, logits.data(), target.data(), logits.numel(), Reduction::Sum, 1.0f, d.data());
        });
  }
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
  if (r == Reduction::None) {
    return elementwise_loss(
        "mse_loss", x, target, true,
        [&](Tensor& out) { LL_KERNEL(x.device(), mse_elementwise, x.data(), target.data(), x.numel(), out.data()); },
        [&](Tensor& d) { LL_KERNEL(x.device(), mse_backward, x.data(), target.data(), x.numel(), Reduction::Sum, 1.0f, d.data()); });
  }
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
  check_arg(r != Reduction::None, "cross_entropy", "takes Reduction::Sum or Mean (per-row losses are not implemented)");
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
  if (r == Reduction::None) {
    // The per-element terms beta * KL_i (sum them over dimension 1 for one KL per row); the
    // gradients are the fused kernel's element-wise ones, times the upstream gradient of each term.
    Tensor out = Tensor::empty_like(mu);
    LL_KERNEL(mu.device(), kl_normal_elementwise, mu.data(), logvar.data(), mu.numel(), beta, out.data());
    if (!needs_grad({&mu, &logvar})) return out;
    Tensor gmu = Tensor::empty_like(mu), glv = Tensor::empty_like(mu);
    Tensor unused = Tensor::empty({}, mu.device());
    LL_KERNEL(mu.device(), kl_normal_fused, mu.data(), logvar.data(), mu.numel(), beta, unused.data(), gmu.data(), glv.data());
    return record(out, "kl_normal", {mu, logvar}, [gmu, glv](const Tensor& g) {
      Tensor a = Tensor::empty_like(gmu), b = Tensor::empty_like(glv);
      LL_KERNEL(g.device(), mul, gmu.data(), g.data(), a.data(), g.numel());
      LL_KERNEL(g.device(), mul, glv.data(), g.data(), b.data(), g.numel());
      return std::vector<Tensor>{a, b};
    });
  }
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
