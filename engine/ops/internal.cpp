#include "engine/ops/internal.h"

#include "engine/ops/dispatch.h"
#include "engine/ops/elementwise.h"
#include "kernels/reduce.h"

namespace ll::detail {

Tensor scale_by(const Tensor& x, const Tensor& s) {
  check_arg(s.numel() == 1, "scale_by", "the scale " + s.str() + " must hold one value");
  check_same_device("scale_by", {&x, &s});
  if (x.is_cpu()) {
    const float v = s.item();
    return v == 1.0f ? x : scale(x, v);
  }
  // s broadcast to x's size (as the backward of a sum: (1, n, 1) from (1, 1)), then multiplied:
  // y_i = x_i * s, the same single rounding as scale(x, s).
  Tensor b = Tensor::empty(x.shape(), x.device());
  LL_KERNEL(x.device(), broadcast_dim, s.data(), b.data(), 1, x.numel(), 1);
  return mul(x, b);
}

Indices::Indices(std::vector<int32_t> host, Device device) : host_(std::move(host)) {
  if (device == Device::CPU || host_.empty()) return;
  const size_t bytes = host_.size() * sizeof(int32_t);
  device_ = static_cast<int32_t*>(cuda_malloc(bytes));
  try {
    cuda_copy_host_to_device(device_, host_.data(), bytes);
  } catch (...) {
    cuda_free(device_);
    throw;
  }
}

Indices::~Indices() {
  if (device_) cuda_free(device_);
}

}  // namespace ll::detail
