// random_formulas.h: what the random ops do with Philox numbers, for both backends.
//
// philox.h gives number k of a stream one at a time; an op over many elements is cheaper when it
// computes each Philox block once and uses its four lanes. philox_normal4() below does that and
// returns bit for bit what philox_normal(seed, subsequence, 4 * block + lane) returns (the same
// float operations in the same order: one log/sqrt per pair shared by the sin and the cos branch),
// which is also the layout of cuRAND's curand_normal4.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/hd.h"
#include "kernels/common/philox.h"

namespace ll::f {

struct Float4 {
  float v[4];
};

// The four uniforms of one block: lanes x, y, z, w mapped into (0, 1] (cuRAND's _curand_uniform).
LL_HD Float4 philox_uniform4(uint64_t seed, uint64_t subsequence, uint64_t block) {
  const Philox4 b = philox_block(seed, subsequence, block);
  return Float4{{philox_to_uniform(b.x), philox_to_uniform(b.y), philox_to_uniform(b.z),
                 philox_to_uniform(b.w)}};
}

// The four standard normals of one block: Box-Muller on (x, y) and on (z, w), sin then cos,
// with the same constants and operations as ll::philox_box_muller.
LL_HD Float4 philox_normal4(uint64_t seed, uint64_t subsequence, uint64_t block) {
  constexpr float k2pow32inv = 2.3283064e-10f;
  constexpr float k2pow32inv2pi = 2.3283064e-10f * 6.2831855f;
  const Philox4 b = philox_block(seed, subsequence, block);
  const float u0 = static_cast<float>(b.x) * k2pow32inv + k2pow32inv / 2.0f;
  const float v0 = static_cast<float>(b.y) * k2pow32inv2pi + k2pow32inv2pi / 2.0f;
  const float u1 = static_cast<float>(b.z) * k2pow32inv + k2pow32inv / 2.0f;
  const float v1 = static_cast<float>(b.w) * k2pow32inv2pi + k2pow32inv2pi / 2.0f;
  const float s0 = sqrtf(-2.0f * logf(u0));
  const float s1 = sqrtf(-2.0f * logf(u1));
  return Float4{{s0 * sinf(v0), s0 * cosf(v0), s1 * sinf(v1), s1 * cosf(v1)}};
}

// y = lo + (hi - lo) u, u in (0, 1] (torch.Tensor.uniform_: from + (to - from) u).
LL_HD float uniform_affine(float u, float lo, float range) { return lo + range * u; }

// y = mean + std z (torch.Tensor.normal_).
LL_HD float normal_affine(float z, float mean, float std) { return mean + std * z; }

// Inverted dropout (Srivastava et al. 2014, with the 1/(1-p) scaling moved to training time, as
// torch.nn.Dropout does): keep when u > p, so p = 0 keeps every element (u > 0 always) and p = 1
// drops every element (u <= 1 always). `scale` = dropout_scale(p).
LL_HD float dropout_scale(float p) { return p < 1.0f ? 1.0f / (1.0f - p) : 0.0f; }
LL_HD bool dropout_keep(float u, float p) { return u > p; }
// x times the mask value (scale or 0), as PyTorch multiplies by its scaled mask: a dropped inf or
// NaN gives NaN there too. Multiplying by a selected constant also keeps the loop free of a
// data-dependent branch (mispredicted half the time at p = 0.5).
LL_HD float dropout_apply(float x, float u, float p, float scale) {
  return x * (dropout_keep(u, p) ? scale : 0.0f);
}

}  // namespace ll::f
