#include "engine/nn/module.h"

#include <stdexcept>

#include "engine/autograd.h"

namespace ll {

void Module::register_parameter(const std::string& name, Tensor* t) {
  t->set_requires_grad(true);
  params_.emplace_back(name, t);
}

void Module::register_buffer(const std::string& name, Tensor* t) { buffers_.emplace_back(name, t); }

void Module::collect(const std::string& prefix, bool params, NamedTensors& out) const {
  for (const auto& [name, t] : params ? params_ : buffers_) out.emplace_back(prefix + name, *t);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", params, out);
}

void Module::collect_slots(const std::string& prefix, std::vector<std::pair<std::string, Tensor*>>& out) const {
  for (const auto& [name, t] : params_) out.emplace_back(prefix + name, t);
  for (const auto& [name, t] : buffers_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect_slots(prefix + name + ".", out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : named_parameters()) out[name] = t;
  for (auto& [name, t] : named_buffers()) out[name] = t;
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect_slots("", slots);
  NoGradGuard no_grad;
  size_t used = 0;
  for (auto& [name, slot] : slots) {
    auto it = state.find(name);
    if (it == state.end()) {
      if (strict) throw std::invalid_argument("load_state_dict: missing entry '" + name + "' " + shape_str(slot->shape()));
      continue;
    }
    ++used;
    if (it->second.shape() != slot->shape()) {
      throw std::invalid_argument("load_state_dict: '" + name + "' has shape " + shape_str(it->second.shape()) +
                                  ", the model expects " + shape_str(slot->shape()));
    }
    slot->copy_(it->second);
  }
  if (strict && used != state.size()) {
    for (auto& [name, t] : state) {
      bool known = false;
      for (auto& [slot_name, slot] : slots) known = known || slot_name == name;
      if (!known) throw std::invalid_argument("load_state_dict: unexpected entry '" + name + "'");
    }
  }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (auto& [name, t] : params_) t->zero_grad();
  for (auto& [name, child] : children_) child->zero_grad();
}

void Module::to(Device device) {
  for (auto& [name, t] : params_) {
    if (t->device() == device) continue;
    const Tensor grad = t->grad();
    *t = t->detach().to(device);
    t->set_requires_grad(true);
    if (grad.defined()) t->set_grad(grad.to(device));  // an accumulated gradient moves along
  }
  for (auto& [name, t] : buffers_) *t = t->to(device);
  for (auto& [name, child] : children_) child->to(device);
}

}  // namespace ll
