// module.h: the Module base class, with PyTorch's naming of parameters and buffers.
//
// A Module owns Tensors registered as parameters (trained) or buffers (state such as BatchNorm's
// running statistics) and child modules registered under a name. Names compose with dots, as in
// PyTorch's state_dict: a Sequential's third child's weight is "2.weight", a model's encoder layer
// "fc1.weight". A checkpoint of named tensors therefore maps one-to-one onto the same model written
// in PyTorch.
//
// The registry keeps pointers to the members, so modules are neither copied nor moved: create them
// with std::make_shared and hold them by shared_ptr.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace ll {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Recursive, in registration order, with dotted names.
  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;
  // Parameters and buffers by name (PyTorch's state_dict).
  std::map<std::string, Tensor> state_dict() const;
  // Copies values in by name. Throws naming the first missing, unexpected or mis-shaped entry;
  // with strict = false missing and unexpected names are ignored (shapes are still checked).
  void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void zero_grad();
  // Moves every parameter (with its gradient, if any) and buffer to `device`; parameters stay
  // leaves that require grad. The members then hold new tensors: create optimizers after the move
  // (an optimizer made before keeps updating the old tensors).
  void to(Device device);

  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

  // Registration (public, as in PyTorch). `t` must be a member of the module: it is referred to by
  // pointer.
  void register_parameter(const std::string& name, Tensor* t);
  void register_buffer(const std::string& name, Tensor* t);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
    children_.emplace_back(name, m);
    return m;
  }

 private:
  void collect(const std::string& prefix, bool params, NamedTensors& out) const;
  void collect_slots(const std::string& prefix, std::vector<std::pair<std::string, Tensor*>>& out) const;

  std::vector<std::pair<std::string, Tensor*>> params_;
  std::vector<std::pair<std::string, Tensor*>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// A module with one input and one output: what Sequential chains.
class Layer : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

// Turns off requires_grad of a set of parameters for its scope and restores each one's flag after
// (PyTorch's `p.requires_grad_(False)` idiom). A pass through frozen layers still carries gradients
// to their inputs, but computes no gradient for their weights and keeps no input alive for one: a
// GAN's generator step uses it for the discriminator, whose gradients from that pass would be
// discarded by the next zero_grad() anyway.
class FrozenParameters {
 public:
  explicit FrozenParameters(std::vector<Tensor> params) : params_(std::move(params)) {
    for (Tensor& p : params_) {
      was_.push_back(p.requires_grad());
      p.set_requires_grad(false);
    }
  }
  ~FrozenParameters() {
    for (size_t i = 0; i < params_.size(); ++i) params_[i].set_requires_grad(was_[i]);
  }
  FrozenParameters(const FrozenParameters&) = delete;
  FrozenParameters& operator=(const FrozenParameters&) = delete;

 private:
  std::vector<Tensor> params_;
  std::vector<bool> was_;
};

}  // namespace ll
