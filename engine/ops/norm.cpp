#include "engine/ops/norm.h"

#include <vector>

#include "engine/autograd.h"
#include "engine/ops/dispatch.h"
#include "kernels/batchnorm.h"
#include "kernels/common/batchnorm_formulas.h"
#include "kernels/instancenorm.h"

namespace ll {

namespace {

// The (N, C, inner) view of x, after checking the arguments of either op.
kernels::BatchNormShape checked_shape(const char* op, const Tensor& x, const Tensor& weight, const Tensor& bias,
                                      const Tensor& running_mean, const Tensor& running_var) {
  check_arg(x.dim() >= 2 && x.dim() <= 4, op, "input must be (N, C), (N, C, L) or (N, C, H, W), got " + x.str());
  kernels::BatchNormShape s;
  s.N = x.size(0);
  s.C = x.size(1);
  s.inner = 1;
  for (int64_t i = 2; i < x.dim(); ++i) s.inner *= x.size(i);
  for (const Tensor* t : {&weight, &bias, &running_mean, &running_var}) {
    if (t->defined()) {
      check_arg(t->dim() == 1 && t->size(0) == s.C, op,
                "per-channel tensor " + t->str() + " does not match " + std::to_string(s.C) + " channels of " + x.str());
    }
  }
  check_arg(running_mean.defined() == running_var.defined(), op, "running_mean and running_var must be given together");
  check_same_device(op, {&x, &weight, &bias, &running_mean, &running_var});
  return s;
}

}  // namespace

Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, float momentum, float eps) {
  const kernels::BatchNormShape s = checked_shape("batch_norm", x, weight, bias, running_mean, running_var);
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

// The forward's exchange: each process sends [count, mean_0 .. mean_{C-1}, var_0 .. var_{C-1}] as
// doubles; the records are merged in rank order (count n, mean, M2 = var * n per channel), the
// pairwise merge of Chan, Golub & LeVeque: n = na + nb, d = mean_b - mean_a, mean = mean_a + d nb / n,
// M2 = M2a + M2b + d^2 na nb / n.
Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, const std::shared_ptr<const BatchNormGroup>& group, float momentum,
                       float eps) {
  const kernels::BatchNormShape s = checked_shape("sync_batch_norm", x, weight, bias, running_mean, running_var);
  check_arg(group != nullptr && group->size >= 1 && group->all_gather, "sync_batch_norm",
            "needs a process group (BatchNormGroup with size >= 1 and an all_gather)");
  const Device dev = x.device();
  const int P = group->size;
  const size_t C = static_cast<size_t>(s.C);
  const size_t record_len = 1 + 2 * C;

  std::vector<double> mine(record_len, 0.0);
  mine[0] = static_cast<double>(s.N * s.inner);
  if (s.C > 0) {
    Tensor shard_mean = Tensor::empty({s.C}, dev), shard_var = Tensor::empty({s.C}, dev);
    LL_KERNEL(dev, batchnorm_moments, s, x.data(), shard_mean.data(), shard_var.data());
    const std::vector<float> m = shard_mean.to_vector(), v = shard_var.to_vector();
    for (size_t c = 0; c < C; ++c) {
      mine[1 + c] = m[c];
      mine[1 + C + c] = v[c];
    }
  }
  std::vector<double> all(record_len * static_cast<size_t>(P));
  group->all_gather(mine.data(), all.data(), record_len * sizeof(double));
  double n = 0.0;
  std::vector<double> mean(C, 0.0), m2(C, 0.0);
  for (int r = 0; r < P; ++r) {
    const double* rec = all.data() + static_cast<size_t>(r) * record_len;
    const double nb = rec[0];
    if (nb == 0.0) continue;
    const double total = n + nb;
    for (size_t c = 0; c < C; ++c) {
      const double d = rec[1 + c] - mean[c];
      mean[c] += d * nb / total;
      m2[c] += rec[1 + C + c] * nb + d * d * n * nb / total;
    }
    n = total;
  }
  // PyTorch's SyncBatchNorm refuses the same case: "Expected more than 1 value per channel".
  const auto M = static_cast<int64_t>(n);
  check_arg(M > 1, "sync_batch_norm",
            "training needs more than one value per channel over all processes, got " + std::to_string(M) +
                " (this process's input " + x.str() + ")");
  std::vector<float> mean_f(C), var_f(C);
  for (size_t c = 0; c < C; ++c) {
    mean_f[c] = static_cast<float>(mean[c]);
    var_f[c] = static_cast<float>(m2[c] / n);
  }
  // The running buffers, with the batch's statistics (the same update as batch_norm's kernels).
  if (running_mean.defined()) {
    std::vector<float> rm = running_mean.to_vector(), rv = running_var.to_vector();
    for (size_t c = 0; c < C; ++c) {
      rm[c] = static_cast<float>(f::bn_running_update(rm[c], mean[c], momentum));
      rv[c] = static_cast<float>(f::bn_running_update(rv[c], f::bn_unbiased_var(m2[c] / n, M), momentum));
    }
    Tensor(running_mean).copy_(Tensor::from_vector(rm, {s.C}, running_mean.device()));
    Tensor(running_var).copy_(Tensor::from_vector(rv, {s.C}, running_var.device()));
  }
  const Tensor batch_mean = Tensor::from_vector(mean_f, {s.C}, dev);
  const Tensor batch_var = Tensor::from_vector(var_f, {s.C}, dev);
  const float* gamma = weight.defined() ? weight.data() : nullptr;
  const float* beta = bias.defined() ? bias.data() : nullptr;
  Tensor y = Tensor::empty_like(x);
  // y = (x - mean) invstd gamma + beta with the batch's mean and invstd = float(1 / sqrt(var + eps)):
  // the eval kernel's arithmetic, given the batch's statistics in place of the running ones.
  LL_KERNEL(dev, batchnorm_forward_eval, s, x.data(), gamma, beta, batch_mean.data(), batch_var.data(), eps,
            y.data());
  return record(y, "sync_batch_norm", {x, weight, bias},
                [x = x.detach(), w = weight, has_w = weight.defined(), has_b = bias.defined(), s, eps, batch_mean,
                 batch_var, group, M](const Tensor& g) {
                  const Device d = g.device();
                  const size_t C = static_cast<size_t>(s.C);
                  // This shard's sum gy (gbeta) and sum gy xhat (ggamma) with the batch's statistics.
                  Tensor gw = Tensor::empty({s.C}, d), gb = Tensor::empty({s.C}, d);
                  LL_KERNEL(d, batchnorm_backward_eval, s, x.data(), g.data(), nullptr, batch_mean.data(),
                            batch_var.data(), eps, nullptr, gw.data(), gb.data());
                  const std::vector<float> sum_gy_xhat = gw.to_vector(), sum_gy = gb.to_vector();
                  std::vector<double> mine(2 * C);
                  for (size_t c = 0; c < C; ++c) {
                    mine[c] = sum_gy[c];
                    mine[C + c] = sum_gy_xhat[c];
                  }
                  std::vector<double> all(2 * C * static_cast<size_t>(group->size));
                  group->all_gather(mine.data(), all.data(), 2 * C * sizeof(double));
                  std::vector<double> total(2 * C, 0.0);
                  for (int r = 0; r < group->size; ++r) {
                    for (size_t i = 0; i < 2 * C; ++i) total[i] += all[static_cast<size_t>(r) * 2 * C + i];
                  }
                  std::vector<float> mean_gy(C), mean_gy_xhat(C);
                  for (size_t c = 0; c < C; ++c) {
                    mean_gy[c] = static_cast<float>(total[c] / static_cast<double>(M));
                    mean_gy_xhat[c] = static_cast<float>(total[C + c] / static_cast<double>(M));
                  }
                  const Tensor mg = Tensor::from_vector(mean_gy, {s.C}, d);
                  const Tensor mgx = Tensor::from_vector(mean_gy_xhat, {s.C}, d);
                  Tensor gx = Tensor::empty_like(x);
                  LL_KERNEL(d, batchnorm_backward_input, s, x.data(), g.data(), has_w ? w.data() : nullptr,
                            batch_mean.data(), batch_var.data(), eps, mg.data(), mgx.data(), gx.data());
                  // The affine parameters' gradients are this shard's sums (ggamma = sum gy xhat,
                  // gbeta = sum gy); the data-parallel step adds them over the processes.
                  return std::vector<Tensor>{gx, has_w ? gw : Tensor(), has_b ? gb : Tensor()};
                });
}

}  // namespace ll
