#include "engine/nn/init.h"

#include <cmath>

#include "engine/ops/dispatch.h"
#include "kernels/random.h"

namespace ll::init {

// Filled in place on the tensor's device, from the same Philox numbers on either (engine/rng.h).
void uniform_(Tensor& t, float lo, float hi, Generator& gen) {
  const PhiloxStream stream = gen.next(t.numel());
  if (t.numel() > 0) LL_KERNEL(t.device(), fill_uniform, t.data(), t.numel(), lo, hi, stream);
}

void normal_(Tensor& t, float mean, float std, Generator& gen) {
  const PhiloxStream stream = gen.next(t.numel());
  if (t.numel() > 0) LL_KERNEL(t.device(), fill_normal, t.data(), t.numel(), mean, std, stream);
}

int64_t fan_in(const Tensor& weight) {
  check_arg(weight.dim() >= 2, "init::fan_in", "needs a weight of at least 2 dimensions, got " + weight.str());
  int64_t receptive = 1;
  for (int64_t d = 2; d < weight.dim(); ++d) receptive *= weight.size(d);
  return weight.size(1) * receptive;
}

void default_weight_(Tensor& weight, Generator& gen) {
  const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in(weight)));
  uniform_(weight, -bound, bound, gen);
}

void default_bias_(Tensor& bias, int64_t fan_in, Generator& gen) {
  const float bound = fan_in > 0 ? 1.0f / std::sqrt(static_cast<float>(fan_in)) : 0.0f;
  uniform_(bias, -bound, bound, gen);
}

}  // namespace ll::init
