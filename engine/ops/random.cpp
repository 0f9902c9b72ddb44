#include "engine/ops/random.h"

#include <cstring>

#include "engine/autograd.h"
#include "engine/cuda_graph.h"
#include "engine/ops/dispatch.h"
#include "kernels/dropout.h"
#include "kernels/random.h"
#include "kernels/vae.h"

namespace ll {

namespace {
// gen.next(n), and inside a CUDA graph's capture an offset that each launch of the graph refreshes
// (engine/cuda_graph.h): the kernels read it from device memory.
PhiloxStream draw(Generator& gen, int64_t n, Device device) {
  PhiloxStream s = gen.next(n);
  if (device == Device::CUDA && graph::capturing()) {
    s.offset_device = static_cast<const uint64_t*>(graph::per_launch(&s.offset, sizeof s.offset, [&gen, n](void* dst) {
      const uint64_t offset = gen.next(n).offset;
      std::memcpy(dst, &offset, sizeof offset);
    }));
  }
  return s;
}
}  // namespace

// Every random op takes its PhiloxStream from the Generator the same way on both devices and hands
// it to the kernel of the tensor's device: the same seed gives the same numbers on the CPU and on
// the GPU (raw bits equal, normals within a few ulps: kernels/common/philox.h).

Tensor randn(const Shape& shape, Generator& gen, Device device) {
  Tensor t = Tensor::empty(shape, device);
  const PhiloxStream stream = draw(gen, t.numel(), device);
  if (t.numel() > 0) LL_KERNEL(device, fill_normal, t.data(), t.numel(), 0.0f, 1.0f, stream);
  return t;
}

Tensor rand(const Shape& shape, Generator& gen, Device device) {
  Tensor t = Tensor::empty(shape, device);
  const PhiloxStream stream = draw(gen, t.numel(), device);
  if (t.numel() > 0) LL_KERNEL(device, fill_uniform, t.data(), t.numel(), 0.0f, 1.0f, stream);
  return t;
}

Tensor dropout(const Tensor& x, float p, bool training, Generator& gen) {
  check_arg(p >= 0.0f && p <= 1.0f, "dropout", "probability " + std::to_string(p) + " is not in [0, 1]");
  if (!training || p == 0.0f) return x;
  check_same_device("dropout", {&x});
  const PhiloxStream stream = draw(gen, x.numel(), x.device());
  Tensor y = Tensor::empty_like(x);
  LL_KERNEL(x.device(), dropout_forward, x.data(), y.data(), x.numel(), p, stream);
  return record(y, "dropout", {x}, [p, stream](const Tensor& g) {
    Tensor gx = Tensor::empty_like(g);
    LL_KERNEL(g.device(), dropout_backward, g.data(), gx.data(), g.numel(), p, stream);
    return std::vector<Tensor>{gx};
  });
}

Tensor reparameterize(const Tensor& mu, const Tensor& logvar, Generator& gen) {
  check_arg(mu.shape() == logvar.shape(), "reparameterize",
            "mu " + mu.str() + " and logvar " + logvar.str() + " differ in shape");
  check_same_device("reparameterize", {&mu, &logvar});
  const PhiloxStream stream = draw(gen, mu.numel(), mu.device());
  Tensor z = Tensor::empty_like(mu);
  LL_KERNEL(mu.device(), reparam_forward, mu.data(), logvar.data(), z.data(), mu.numel(), stream);
  return record(z, "reparameterize", {mu, logvar}, [lv = logvar.detach(), stream](const Tensor& g) {
    Tensor gmu = Tensor::empty_like(g), glv = Tensor::empty_like(g);
    LL_KERNEL(g.device(), reparam_backward, lv.data(), g.data(), gmu.data(), glv.data(), g.numel(), stream);
    return std::vector<Tensor>{gmu, glv};
  });
}

}  // namespace ll
