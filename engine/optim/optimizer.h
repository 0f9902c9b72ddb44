// optimizer.h: Adam / AdamW and SGD with momentum, with PyTorch's semantics (torch/optim/).
//
// An optimizer holds the parameters it updates and, per parameter, its state (moment buffers).
// step() reads each parameter's grad() and updates the parameter in place; parameters without a
// gradient are skipped, as in PyTorch. state_dict() / load_state_dict() carry the state through a
// checkpoint so that a resumed run continues exactly.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ll::optim {

class Optimizer {
 public:
  explicit Optimizer(std::vector<Tensor> params);
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();  // drops every parameter's gradient (PyTorch's set_to_none)

  // Named state tensors, e.g. "0.exp_avg", "0.exp_avg_sq", "step" (parameter index first).
  virtual std::map<std::string, Tensor> state_dict() const = 0;
  virtual void load_state_dict(const std::map<std::string, Tensor>& state) = 0;

  double lr = 0.0;  // may be changed between steps (schedules)

 protected:
  std::vector<Tensor> params_;
};

// Hyperparameters are double, as PyTorch's are Python floats: the per-step coefficients are
// computed in double and rounded once (kernels::adam_coeffs).
struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  bool decoupled_weight_decay = false;  // true: AdamW (Loshchilov & Hutter 2019)
};

// Adam (Kingma & Ba 2015) with PyTorch's bias correction and eps placement; AdamW when
// decoupled_weight_decay (PyTorch's AdamW default weight_decay is 1e-2: pass it explicitly).
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, AdamOptions options = {});
  void step() override;
  std::map<std::string, Tensor> state_dict() const override;
  void load_state_dict(const std::map<std::string, Tensor>& state) override;
  int64_t steps() const { return step_; }
  AdamOptions options;

 private:
  int64_t step_ = 0;
  std::vector<Tensor> m_, v_;
};

struct SgdOptions {
  double lr = 1e-2;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, SgdOptions options = {});
  void step() override;
  std::map<std::string, Tensor> state_dict() const override;
  void load_state_dict(const std::map<std::string, Tensor>& state) override;
  SgdOptions options;

 private:
  std::vector<Tensor> buf_;
  std::vector<bool> started_;
};

}  // namespace ll::optim
