#include "engine/ops/loss.h"

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "kernels/elementwise.h"
#include "kernels/vae.h"

namespace ll {

namespace k = kernels::cpu;

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
    k::bce_with_logits_forward(logits.data(), target.data(), logits.numel(), r, loss.data());
    return loss;
  }
  // One fused pass: the loss and dloss/dlogits; backward only scales the latter.
  Tensor gx = Tensor::empty_like(logits);
  k::bce_with_logits_fused(logits.data(), target.data(), logits.numel(), r, loss.data(), gx.data());
  return record(loss, "bce_with_logits", {logits}, [gx](const Tensor& g) {
    const float s = g.item();
    return std::vector<Tensor>{s == 1.0f ? gx : scale(gx, s)};
  });
}

Tensor mse_loss(const Tensor& x, const Tensor& target, Reduction r) {
  check_pair("mse_loss", x, target);
  Tensor loss = Tensor::empty({}, x.device());
  k::mse_forward(x.data(), target.data(), x.numel(), r, loss.data());
  return record(loss, "mse_loss", {x, target}, [x = x.detach(), t = target.detach(), r](const Tensor& g) {
    // d/dx = 2 (x - t) (/n); d/dt is its negative.
    Tensor gx = Tensor::empty_like(x);
    k::mse_backward(x.data(), t.data(), x.numel(), r, g.item(), gx.data());
    Tensor gt = Tensor::empty_like(x);
    k::scale(gx.data(), -1.0f, gt.data(), gx.numel());
    return std::vector<Tensor>{gx, gt};
  });
}

Tensor cross_entropy(const Tensor& logits, const std::vector<int32_t>& labels, Reduction r) {
  check_arg(logits.dim() == 2, "cross_entropy", "logits must be (N, C), got " + logits.str());
  const int64_t N = logits.size(0), C = logits.size(1);
  check_arg(static_cast<int64_t>(labels.size()) == N, "cross_entropy",
            std::to_string(labels.size()) + " labels for " + std::to_string(N) + " rows");
  check_arg(N > 0, "cross_entropy", "empty batch");
  for (size_t i = 0; i < labels.size(); ++i) {
    check_arg(labels[i] >= 0 && labels[i] < C, "cross_entropy",
              "label " + std::to_string(labels[i]) + " at row " + std::to_string(i) + " is not in [0, " +
                  std::to_string(C) + ")");
  }
  check_same_device("cross_entropy", {&logits});
  Tensor loss = Tensor::empty({}, logits.device());
  k::softmax_cross_entropy_forward(logits.data(), labels.data(), N, C, r, loss.data());
  return record(loss, "cross_entropy", {logits}, [x = logits.detach(), labels, N, C, r](const Tensor& g) {
    Tensor gx = Tensor::empty_like(x);
    k::softmax_cross_entropy_backward(x.data(), labels.data(), N, C, r, g.item(), gx.data());
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
  k::kl_normal_fused(mu.data(), logvar.data(), mu.numel(), weight, loss.data(), grad ? gmu.data() : nullptr,
                     grad ? glv.data() : nullptr);
  return record(loss, "kl_normal", {mu, logvar}, [gmu, glv](const Tensor& g) {
    const float s = g.item();
    return std::vector<Tensor>{s == 1.0f ? gmu : scale(gmu, s), s == 1.0f ? glv : scale(glv, s)};
  });
}

}  // namespace ll
