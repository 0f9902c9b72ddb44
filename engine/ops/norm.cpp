#include "engine/ops/norm.h"

#include "engine/autograd.h"
#include "engine/ops/dispatch.h"
#include "kernels/batchnorm.h"
#include "kernels/instancenorm.h"

namespace ll {

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, float momentum, float eps) {
  check_arg(x.dim() >= 2 && x.dim() <= 4, "batch_norm", "input must be (N, C), (N, C, L) or (N, C, H, W), got " + x.str());
  kernels::BatchNormShape s;
  s.N = x.size(0);
  s.C = x.size(1);
  s.inner = x.numel() / (s.N * s.C > 0 ? s.N * s.C : 1);
  for (const Tensor* t : {&weight, &bias, &running_mean, &running_var}) {
    if (t->defined()) {
      check_arg(t->dim() == 1 && t->size(0) == s.C, "batch_norm",
                "per-channel tensor " + t->str() + " does not match " + std::to_string(s.C) + " channels of " + x.str());
    }
  }
  check_arg(running_mean.defined() == running_var.defined(), "batch_norm",
            "running_mean and running_var must be given together");
  check_same_device("batch_norm", {&x, &weight, &bias, &running_mean, &running_var});
  const float* gamma = weight.defined() ? weight.data() : nullptr;
  const float* beta = bias.defined() ? bias.data() : nullptr;
  Tensor y = Tensor::empty_like(x);

  if (training) {
    // PyTorch: "Expected more than 1 value per channel when training".
    check_arg(s.N * s.inner > 1, "batch_norm",
              "training needs more than one value per channel, got input " + x.str());
    Tensor save_mean = Tensor::empty({s.C}, x.device());
    Tensor save_invstd = Tensor::empty({s.C}, x.device());
    LL_KERNEL(x.device(), batchnorm_forward_train, s, x.data(), gamma, beta, eps, momentum,
              running_mean.defined() ? running_mean.data() : nullptr,
              running_var.defined() ? running_var.data() : nullptr, y.data(), save_mean.data(), save_invstd.data());
    return record(y, "batch_norm", {x, weight, bias},
                  [x = x.detach(), w = weight, has_w = weight.defined(), has_b = bias.defined(), s,
                   save_mean, save_invstd](const Tensor& g) {
                    Tensor gx = Tensor::empty_like(x);
                    Tensor gw = has_w ? Tensor::empty({s.C}, g.device()) : Tensor();
                    Tensor gb = has_b ? Tensor::empty({s.C}, g.device()) : Tensor();
                    LL_KERNEL(g.device(), batchnorm_backward_train, s, x.data(), g.data(), has_w ? w.data() : nullptr,
                              save_mean.data(), save_invstd.data(), gx.data(), has_w ? gw.data() : nullptr,
                              has_b ? gb.data() : nullptr);
                    return std::vector<Tensor>{gx, gw, gb};
                  });
  }

  check_arg(running_mean.defined(), "batch_norm", "eval mode needs running statistics (track_running_stats)");
  LL_KERNEL(x.device(), batchnorm_forward_eval, s, x.data(), gamma, beta, running_mean.data(), running_var.data(), eps,
            y.data());
  // The running statistics are constants here; copies are saved because training steps may
  // update the buffers in place before this graph's backward runs.
  return record(y, "batch_norm_eval", {x, weight, bias},
                [x = x.detach(), w = weight, has_w = weight.defined(), has_b = bias.defined(), s, eps,
                 rm = running_mean.clone(), rv = running_var.clone()](const Tensor& g) {
                  Tensor gx = Tensor::empty_like(x);
                  Tensor gw = has_w ? Tensor::empty({s.C}, g.device()) : Tensor();
                  Tensor gb = has_b ? Tensor::empty({s.C}, g.device()) : Tensor();
                  LL_KERNEL(g.device(), batchnorm_backward_eval, s, x.data(), g.data(), has_w ? w.data() : nullptr,
                            rm.data(), rv.data(), eps, gx.data(), has_w ? gw.data() : nullptr,
                            has_b ? gb.data() : nullptr);
                  return std::vector<Tensor>{gx, gw, gb};
                });
}

Tensor instance_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps) {
  check_arg(x.dim() == 3 || x.dim() == 4, "instance_norm", "input must be (N, C, L) or (N, C, H, W), got " + x.str());
  kernels::InstanceNormShape s;
  s.N = x.size(0);
  s.C = x.size(1);
  s.inner = x.numel() / (s.N * s.C > 0 ? s.N * s.C : 1);
  check_arg(weight.defined() == bias.defined(), "instance_norm", "weight and bias must be given together (affine)");
  for (const Tensor* t : {&weight, &bias}) {
    if (t->defined()) {
      check_arg(t->dim() == 1 && t->size(0) == s.C, "instance_norm",
                "per-channel tensor " + t->str() + " does not match " + std::to_string(s.C) + " channels of " + x.str());
    }
  }
  check_arg(s.inner > 1, "instance_norm", "needs more than one spatial value per channel, got input " + x.str());
  check_same_device("instance_norm", {&x, &weight, &bias});
  const bool affine = weight.defined();
  Tensor y = Tensor::empty_like(x);
  Tensor save_mean = Tensor::empty({s.N * s.C}, x.device());
  Tensor save_invstd = Tensor::empty({s.N * s.C}, x.device());
  LL_KERNEL(x.device(), instancenorm_forward, s, x.data(), affine ? weight.data() : nullptr,
            affine ? bias.data() : nullptr, eps, y.data(), save_mean.data(), save_invstd.data());
  return record(y, "instance_norm", {x, weight, bias},
                [x = x.detach(), w = weight, affine, s, save_mean, save_invstd](const Tensor& g) {
                  Tensor gx = Tensor::empty_like(x);
                  Tensor gw = affine ? Tensor::empty({s.C}, g.device()) : Tensor();
                  Tensor gb = affine ? Tensor::empty({s.C}, g.device()) : Tensor();
                  LL_KERNEL(g.device(), instancenorm_backward, s, x.data(), g.data(), affine ? w.data() : nullptr,
                            save_mean.data(), save_invstd.data(), gx.data(), affine ? gw.data() : nullptr,
                            affine ? gb.data() : nullptr);
                  return std::vector<Tensor>{gx, gw, gb};
                });
}

}  // namespace ll
