#include "engine/optim/optimizer.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "engine/autograd.h"
#include "engine/cuda_graph.h"
#include "engine/ops/dispatch.h"
#include "kernels/optim.h"

namespace ll::optim {

Optimizer::Optimizer(std::vector<Tensor> params) : params_(std::move(params)) {
  for (const Tensor& p : params_) {
    check_arg(p.defined() && p.is_leaf() && p.requires_grad(), "Optimizer",
              "every parameter must be a leaf tensor with requires_grad, got " + p.str());
  }
}

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.zero_grad();
}

namespace {
// Fetches state[name] and checks its shape: a checkpoint of another model fails here, by name.
Tensor state_entry(const std::map<std::string, Tensor>& state, const std::string& name, const Shape& shape) {
  auto it = state.find(name);
  if (it == state.end()) throw std::invalid_argument("optimizer state: missing entry '" + name + "'");
  if (it->second.shape() != shape) {
    throw std::invalid_argument("optimizer state: '" + name + "' has shape " + shape_str(it->second.shape()) +
                                ", expected " + shape_str(shape));
  }
  return it->second;
}
}  // namespace

// ---- Adam ---------------------------------------------------------------------------------------

Adam::Adam(std::vector<Tensor> params, AdamOptions opts) : Optimizer(std::move(params)), options(opts) {
  check_arg(opts.lr >= 0.0 && opts.eps >= 0.0 && opts.beta1 >= 0.0 && opts.beta1 < 1.0 && opts.beta2 >= 0.0 &&
                opts.beta2 < 1.0 && opts.weight_decay >= 0.0,
            "Adam", "needs lr >= 0, eps >= 0, betas in [0, 1), weight_decay >= 0");
  lr = opts.lr;
  for (const Tensor& p : params_) {
    m_.push_back(Tensor::zeros(p.shape(), p.device()));
    v_.push_back(Tensor::zeros(p.shape(), p.device()));
  }
}

void Adam::step() {
  NoGradGuard no_grad;
  ++step_;
  const f::AdamCoeffs c = kernels::adam_coeffs(lr, options.beta1, options.beta2, options.eps, options.weight_decay,
                                                options.decoupled_weight_decay, step_);
#ifdef LATENTLAB_HAS_CUDA
  // CUDA parameters are updated together: one launch per group of tensors (adam_step_multi gives
  // each element the bits of adam_step) instead of one per tensor.
  std::vector<kernels::cuda::AdamTensor> on_gpu;
#endif
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = params_[i].grad();
    if (!g.defined()) continue;
    check_same_device("Adam.step", {&params_[i], &g, &m_[i], &v_[i]});
    if (g.is_cpu()) {
      kernels::cpu::adam_step(c, params_[i].data(), g.data(), m_[i].data(), v_[i].data(), params_[i].numel());
      continue;
    }
#ifdef LATENTLAB_HAS_CUDA
    on_gpu.push_back({params_[i].data(), g.data(), m_[i].data(), v_[i].data(), params_[i].numel()});
#else
    detail::no_cuda_kernels("adam_step");
#endif
  }
#ifdef LATENTLAB_HAS_CUDA
  if (!on_gpu.empty()) {
    // Inside a CUDA graph's capture the coefficients of each later launch come from device memory,
    // refreshed before it as this function would compute them for that step (engine/cuda_graph.h).
    const f::AdamCoeffs* per_launch = nullptr;
    if (graph::capturing()) {
      per_launch = static_cast<const f::AdamCoeffs*>(graph::per_launch(&c, sizeof c, [this](void* dst) {
        ++step_;
        const f::AdamCoeffs next = kernels::adam_coeffs(lr, options.beta1, options.beta2, options.eps,
                                                        options.weight_decay, options.decoupled_weight_decay, step_);
        std::memcpy(dst, &next, sizeof next);
      }));
    }
    kernels::cuda::adam_step_multi(c, on_gpu.data(), static_cast<int64_t>(on_gpu.size()), kernels::cuda::compute_stream(),
                                   per_launch);
  }
#endif
}

// The step count: "step" as PyTorch's Adam keeps it (a float, exact up to 2^24 steps), and
// "step_exact" with the count in two 24-bit halves (low, high), each exact in a float, which a
// resumed run reads first: exact up to 2^48 steps.
constexpr int64_t kStepHalf = int64_t{1} << 24;

std::map<std::string, Tensor> Adam::state_dict() const {
  std::map<std::string, Tensor> s;
  s["step"] = Tensor::scalar(static_cast<float>(step_));
  s["step_exact"] = Tensor::from_vector({static_cast<float>(step_ % kStepHalf), static_cast<float>(step_ / kStepHalf)}, {2});
  for (size_t i = 0; i < params_.size(); ++i) {
    s[std::to_string(i) + ".exp_avg"] = m_[i];
    s[std::to_string(i) + ".exp_avg_sq"] = v_[i];
  }
  return s;
}

void Adam::load_state_dict(const std::map<std::string, Tensor>& state) {
  // Everything is checked before anything is changed: a refused state leaves the optimizer as it was.
  int64_t steps = 0;
  if (state.count("step_exact")) {
    const std::vector<float> halves = state_entry(state, "step_exact", {2}).to_vector();
    for (float h : halves) {
      check_arg(h >= 0.0f && h < static_cast<float>(kStepHalf) && h == std::floor(h), "Adam.load_state_dict",
                "'step_exact' holds " + std::to_string(h) + ", not a count below 2^24");
    }
    steps = static_cast<int64_t>(halves[0]) + static_cast<int64_t>(halves[1]) * kStepHalf;
  } else {  // a checkpoint without it (PyTorch's, or latentlab's before it)
    // A count, as a float: a whole number from 0 (NaN, -1 or 1e30 would reach the bias corrections
    // as a garbage step count, and llround of them is unspecified).
    const float step = state_entry(state, "step", {}).item();
    check_arg(step >= 0.0f && step < static_cast<float>(kStepHalf * kStepHalf) && step == std::floor(step),
              "Adam.load_state_dict", "'step' holds " + std::to_string(step) + ", not a step count below 2^48");
    steps = static_cast<int64_t>(step);
  }
  std::vector<Tensor> m, v;
  for (size_t i = 0; i < params_.size(); ++i) {
    m.push_back(state_entry(state, std::to_string(i) + ".exp_avg", params_[i].shape()));
    v.push_back(state_entry(state, std::to_string(i) + ".exp_avg_sq", params_[i].shape()));
  }
  step_ = steps;
  for (size_t i = 0; i < params_.size(); ++i) {
    m_[i].copy_(m[i]);
    v_[i].copy_(v[i]);
  }
}

// ---- SGD ----------------------------------------------------------------------------------------

SGD::SGD(std::vector<Tensor> params, SgdOptions opts) : Optimizer(std::move(params)), options(opts) {
  check_arg(opts.lr >= 0.0 && opts.momentum >= 0.0 && opts.weight_decay >= 0.0, "SGD",
            "needs lr, momentum and weight_decay >= 0");
  check_arg(!opts.nesterov || (opts.momentum > 0.0 && opts.dampening == 0.0), "SGD",
            "Nesterov momentum requires a momentum and zero dampening");
  lr = opts.lr;
  for (const Tensor& p : params_) buf_.push_back(Tensor::zeros(p.shape(), p.device()));
  started_.assign(params_.size(), false);
}

void SGD::step() {
  NoGradGuard no_grad;
  // Its coefficients (lr, the first step's flag) would be frozen into the graph.
  check_arg(!graph::capturing(), "SGD.step", "is not supported inside a CUDA graph capture (Adam is)");
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor g = params_[i].grad();
    if (!g.defined()) continue;
    check_same_device("SGD.step", {&params_[i], &g, &buf_[i]});
    const f::SgdCoeffs c{static_cast<float>(lr), static_cast<float>(options.momentum),
                         static_cast<float>(options.dampening), static_cast<float>(options.weight_decay),
                         options.nesterov, !started_[i]};
    LL_KERNEL(g.device(), sgd_step, c, params_[i].data(), g.data(), buf_[i].data(), params_[i].numel());
    started_[i] = true;
  }
}

std::map<std::string, Tensor> SGD::state_dict() const {
  std::map<std::string, Tensor> s;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (started_[i]) s[std::to_string(i) + ".momentum_buffer"] = buf_[i];
  }
  return s;
}

void SGD::load_state_dict(const std::map<std::string, Tensor>& state) {
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string name = std::to_string(i) + ".momentum_buffer";
    started_[i] = state.count(name) > 0;
    if (started_[i]) buf_[i].copy_(state_entry(state, name, params_[i].shape()));
  }
}

}  // namespace ll::optim
