#include "engine/tensor.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <sstream>
#include <stdexcept>

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/ops/dispatch.h"
#include "kernels/elementwise.h"

namespace ll {

std::string shape_str(const Shape& s) {
  std::ostringstream o;
  o << "(";
  for (size_t i = 0; i < s.size(); ++i) o << (i ? ", " : "") << s[i];
  o << ")";
  return o.str();
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

void check_arg(bool cond, const char* op, const std::string& message) {
  if (!cond) throw std::invalid_argument(std::string(op) + ": " + message);
}

void check_same_device(const char* op, std::initializer_list<const Tensor*> tensors) {
  const Tensor* first = nullptr;
  for (const Tensor* t : tensors) {
    if (!t || !t->defined()) continue;
    if (!first) {
      first = t;
    } else if (t->device() != first->device()) {
      throw std::invalid_argument(std::string(op) + ": tensors on different devices (" + first->str() + " and " +
                                  t->str() + "); move them with .to(device) first");
    }
  }
}

// ---- Storage ----------------------------------------------------------------------------------

Storage::Storage(int64_t n, Device d) : numel(n), device(d) {
  if (n < 0) throw std::invalid_argument("Storage: negative size " + std::to_string(n));
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  if (d == Device::CPU) {
    data = static_cast<float*>(host_alloc(bytes));
  } else {
    data = static_cast<float*>(cuda_malloc(bytes));
  }
}

Storage::~Storage() {
  if (device == Device::CPU) {
    host_free(data, static_cast<size_t>(numel) * sizeof(float));
  } else {
    cuda_free(data);
  }
}

// ---- creation ---------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, Device device) {
  for (int64_t d : shape) {
    check_arg(d >= 0, "Tensor::empty", "negative dimension in shape " + shape_str(shape));
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape), device);
  impl->shape = shape;
  return Tensor(std::move(impl));
}

Tensor Tensor::zeros(const Shape& shape, Device device) { return full(shape, 0.0f, device); }
Tensor Tensor::ones(const Shape& shape, Device device) { return full(shape, 1.0f, device); }

Tensor Tensor::full(const Shape& shape, float value, Device device) {
  Tensor t = empty(shape, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  check_arg(static_cast<int64_t>(values.size()) == shape_numel(shape), "Tensor::from_vector",
            std::to_string(values.size()) + " values do not fill shape " + shape_str(shape));
  Tensor t = empty(shape, Device::CPU);
  if (!values.empty()) std::memcpy(t.data(), values.data(), values.size() * sizeof(float));
  return t.to(device);
}

Tensor Tensor::scalar(float value, Device device) { return full({}, value, device); }

// ---- what it is -------------------------------------------------------------------------------

void Tensor::check_defined(const char* what) const {
  if (!impl_) throw std::logic_error(std::string(what) + " on an undefined tensor");
}

const Shape& Tensor::shape() const {
  check_defined("shape()");
  return impl_->shape;
}

int64_t Tensor::size(int64_t d) const {
  const int64_t n = dim();
  const int64_t k = d < 0 ? d + n : d;
  check_arg(k >= 0 && k < n, "Tensor::size", "dimension " + std::to_string(d) + " out of range for " + str());
  return impl_->shape[static_cast<size_t>(k)];
}

Device Tensor::device() const {
  check_defined("device()");
  return impl_->storage->device;
}

std::string Tensor::str() const {
  if (!impl_) return "Tensor(undefined)";
  return "Tensor" + shape_str(shape()) + " " + device_name(device());
}

float* Tensor::data() const {
  check_defined("data()");
  return impl_->storage->data + impl_->offset;
}

std::vector<float> Tensor::to_vector() const {
  std::vector<float> out(static_cast<size_t>(numel()));
  if (out.empty()) return out;
  if (is_cpu()) {
    std::memcpy(out.data(), data(), out.size() * sizeof(float));
  } else {
    cuda_copy_device_to_host(out.data(), data(), out.size() * sizeof(float));
  }
  return out;
}

float Tensor::item() const {
  check_arg(numel() == 1, "item", "the tensor " + str() + " does not hold exactly one value");
  return to_vector()[0];
}

float Tensor::at(std::initializer_list<int64_t> index) const {
  check_arg(static_cast<int64_t>(index.size()) == dim(), "at", "index rank does not match " + str());
  int64_t flat = 0, d = 0;
  for (int64_t i : index) {
    const int64_t n = impl_->shape[static_cast<size_t>(d++)];
    check_arg(i >= 0 && i < n, "at", "index out of range for " + str());
    flat = flat * n + i;
  }
  if (is_cpu()) return data()[flat];
  float v = 0.0f;
  cuda_copy_device_to_host(&v, data() + flat, sizeof(float));
  return v;
}

// ---- copies -----------------------------------------------------------------------------------

Tensor Tensor::to(Device device) const {
  check_defined("to()");
  if (device == this->device()) return *this;
  Tensor out = empty(shape(), device);
  out.copy_(*this);
  return out;
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), device());
  out.copy_(*this);
  return out;
}

void Tensor::copy_(const Tensor& src) {
  check_arg(src.numel() == numel(), "copy_", "source " + src.str() + " and destination " + str() +
                                                 " differ in size");
  const size_t bytes = static_cast<size_t>(numel()) * sizeof(float);
  if (bytes == 0) return;
  const Device from = src.device(), to = device();
  if (from == Device::CPU && to == Device::CPU) {
    kernels::cpu::copy(src.data(), data(), numel());
  } else if (from == Device::CPU) {
    cuda_copy_host_to_device(data(), src.data(), bytes);
  } else if (to == Device::CPU) {
    cuda_copy_device_to_host(data(), src.data(), bytes);
  } else {
    cuda_copy_device_to_device(data(), src.data(), bytes);
  }
}

void Tensor::fill_(float value) {
  if (numel() == 0) return;
  LL_KERNEL(device(), fill, data(), value, numel());
}

// ---- views ------------------------------------------------------------------------------------

namespace {
Tensor view_of(const Tensor& base, const Shape& shape, int64_t extra_offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->offset = base.impl()->offset + extra_offset;
  impl->shape = shape;
  return Tensor(std::move(impl));
}
}  // namespace

Tensor Tensor::reshape(const Shape& new_shape) const {
  Shape s = new_shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      check_arg(infer < 0, "reshape", "more than one -1 in " + shape_str(new_shape));
      infer = static_cast<int64_t>(i);
    } else {
      check_arg(s[i] >= 0, "reshape", "negative dimension in " + shape_str(new_shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    check_arg(known > 0 && numel() % known == 0, "reshape",
              "cannot infer -1 in " + shape_str(new_shape) + " for " + str());
    s[static_cast<size_t>(infer)] = numel() / known;
  }
  check_arg(shape_numel(s) == numel(), "reshape",
            "shape " + shape_str(new_shape) + " does not hold the " + std::to_string(numel()) +
                " values of " + str());
  const Shape old_shape = shape();
  return record(view_of(*this, s, 0), "reshape", {*this}, [old_shape](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(old_shape)};
  });
}

Tensor Tensor::flatten(int64_t start_dim) const {
  const int64_t n = dim();
  const int64_t k = start_dim < 0 ? start_dim + n : start_dim;
  check_arg(k >= 0 && k <= n, "flatten", "start_dim " + std::to_string(start_dim) + " out of range for " + str());
  Shape s(shape().begin(), shape().begin() + k);
  int64_t rest = 1;
  for (int64_t i = k; i < n; ++i) rest *= shape()[static_cast<size_t>(i)];
  s.push_back(rest);
  return reshape(s);
}

Tensor Tensor::slice(int64_t begin, int64_t end) const {
  check_arg(dim() >= 1, "slice", "needs at least one dimension, got " + str());
  const int64_t rows = shape()[0];
  check_arg(0 <= begin && begin <= end && end <= rows, "slice",
            "rows [" + std::to_string(begin) + ", " + std::to_string(end) + ") out of range for " + str());
  Shape s = shape();
  s[0] = end - begin;
  const int64_t row = rows ? numel() / rows : 0;  // values per row
  const Shape full = shape();
  return record(view_of(*this, s, begin * row), "slice", {*this}, [full, begin](const Tensor& g) {
    // The gradient of a slice is zero outside the rows it took.
    Tensor gx = Tensor::zeros(full, g.device());
    gx.slice(begin, begin + g.size(0)).copy_(g);
    return std::vector<Tensor>{gx};
  });
}

Tensor Tensor::detach() const {
  check_defined("detach()");
  return view_of(*this, shape(), 0);
}

// ---- autograd ---------------------------------------------------------------------------------

Tensor& Tensor::set_requires_grad(bool value) {
  check_defined("set_requires_grad()");
  if (!is_leaf()) {
    throw std::invalid_argument("set_requires_grad: only leaf tensors can be marked; this tensor was computed by '" +
                                impl_->grad_fn->op + "' (use detach() first)");
  }
  impl_->requires_grad = value;
  return *this;
}

const std::shared_ptr<Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<Node> none;
  return impl_ ? impl_->grad_fn : none;
}

Tensor Tensor::grad() const {
  check_defined("grad()");
  return Tensor(impl_->grad);
}

void Tensor::set_grad(const Tensor& g) {
  check_defined("set_grad()");
  if (g.defined()) {
    check_arg(g.shape() == shape(), "set_grad", "gradient " + g.str() + " for " + str());
  }
  impl_->grad = g.impl_ptr();
}

void Tensor::zero_grad() {
  check_defined("zero_grad()");
  impl_->grad.reset();
}

void Tensor::backward(const Tensor& grad_output, bool retain_graph) const {
  check_defined("backward()");
  run_backward(*this, grad_output, retain_graph);
}

}  // namespace ll
