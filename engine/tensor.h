// tensor.h: the Tensor of latentlab.
//
// A Tensor is a handle (a shared pointer) to a TensorImpl: float32 values in a Storage on one device,
// a shape, and an offset into the storage. Tensors are always contiguous (row-major); the views
// latentlab needs — reshape, flatten and slices along the batch dimension — keep contiguity, so
// an offset and a shape describe them and no strides are needed. Copying a Tensor copies the handle
// (like PyTorch): both name the same values.
//
// Autograd: a tensor computed by a differentiable op from inputs that require gradients records the
// op's backward (a Node, engine/autograd.h) in grad_fn. backward() on a scalar walks those nodes in
// reverse and accumulates gradients into the leaves (tensors created with requires_grad = true, such
// as parameters) in their grad().
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "engine/device.h"

namespace ll {

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& s);  // "(2, 3, 4)"
int64_t shape_numel(const Shape& s);

// Memory of one device, freed when the last tensor viewing it goes away.
struct Storage {
  Storage(int64_t numel, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  float* data = nullptr;
  int64_t numel = 0;
  Device device = Device::CPU;
};

struct Node;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;        // the op that made this tensor; null for leaves
  std::shared_ptr<TensorImpl> grad;     // accumulated dL/dthis (leaves that require grad)
};

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (defined() is false)
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation ----
  static Tensor empty(const Shape& shape, Device device = Device::CPU);  // uninitialized values
  static Tensor zeros(const Shape& shape, Device device = Device::CPU);
  static Tensor ones(const Shape& shape, Device device = Device::CPU);
  static Tensor full(const Shape& shape, float value, Device device = Device::CPU);
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            Device device = Device::CPU);
  static Tensor scalar(float value, Device device = Device::CPU);  // shape ()
  static Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.device()); }
  static Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.device()); }

  // ---- what it is ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t dim() const { return static_cast<int64_t>(shape().size()); }
  int64_t size(int64_t d) const;  // negative d counts from the end
  int64_t numel() const { return shape_numel(shape()); }
  Device device() const;
  bool is_cpu() const { return device() == Device::CPU; }
  std::string str() const;  // "Tensor(2, 3) cpu"

  // Raw pointer to the first value, on the tensor's device.
  float* data() const;
  // Host copies.
  std::vector<float> to_vector() const;
  float item() const;  // a one-element tensor's value
  float at(std::initializer_list<int64_t> index) const;  // one value (host copy), for tests and tools

  // ---- copies and devices (not recorded by autograd) ----
  Tensor to(Device device) const;  // same handle when already there
  Tensor clone() const;            // new storage with the same values, no autograd history
  void copy_(const Tensor& src);   // values of src into this (same numel), in place
  void fill_(float value);         // in place
  void zero_() { fill_(0.0f); }

  // ---- views (share storage; differentiable) ----
  Tensor reshape(const Shape& shape) const;  // one dimension may be -1
  Tensor flatten(int64_t start_dim = 1) const;  // (N, C, H, W) -> (N, C*H*W) by default
  Tensor slice(int64_t begin, int64_t end) const;  // rows [begin, end) of dimension 0
  Tensor detach() const;  // same values, cut from the graph, requires_grad false

  // ---- autograd ----
  bool requires_grad() const { return impl_ && impl_->requires_grad; }
  // Marks a leaf as a variable to differentiate by. Throws on a non-leaf.
  Tensor& set_requires_grad(bool value = true);
  bool is_leaf() const { return !impl_ || !impl_->grad_fn; }
  const std::shared_ptr<Node>& grad_fn() const;
  // dL/dthis accumulated by backward(); undefined before the first backward.
  Tensor grad() const;
  void set_grad(const Tensor& g);
  void zero_grad();  // drops the gradient (undefined again), as PyTorch's set_to_none
  // Backpropagates from this tensor. Without an argument the tensor must hold one element (a loss)
  // and its gradient is 1. Frees the graph's saved values unless retain_graph.
  void backward(const Tensor& grad_output = Tensor(), bool retain_graph = false) const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  void check_defined(const char* what) const;
  std::shared_ptr<TensorImpl> impl_;
};

// Throws std::invalid_argument with `op: message` unless `cond`.
void check_arg(bool cond, const char* op, const std::string& message);
// Throws std::invalid_argument, naming the op and both tensors, unless all defined tensors are on
// the same device. (Every op has kernels on both devices: engine/ops/dispatch.h.)
void check_same_device(const char* op, std::initializer_list<const Tensor*> tensors);

}  // namespace ll
