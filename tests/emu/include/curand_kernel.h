// curand_kernel.h (emulated): cuRAND's device API for the Philox4_32_10 generator, the only one
// latentlab uses. Written from the algorithm cuRAND's headers document (curand_philox4x32_x.h,
// curand_kernel.h, curand_uniform.h, curand_normal.h of CUDA 13), independently of
// kernels/common/philox.h, so the bit-for-bit tests of our CPU Philox against "cuRAND" compare two
// implementations. It is our reading of cuRAND, not cuRAND.
//
// State: a 128-bit counter ctr = (x, y, z, w) and a 64-bit key = seed. curand_init(seed,
// subsequence, offset) starts at ctr = 0, adds `subsequence` to the high 64 bits (ctr.z, ctr.w; a
// subsequence is 2^66 numbers = 2^64 blocks of 4) and skips `offset` numbers: offset / 4 blocks on
// the low 64 bits, and STATE = offset % 4, the lane of the current block `output` that curand()
// returns next. curand4() returns the next 4 numbers (which straddle two blocks when STATE != 0).
// The carry of Philox_State_Incr(n) is reproduced exactly as cuRAND writes it.
// Uniforms: x * 2^-32 + 2^-33 in float, i.e. in (0, 1]. Normals: Box-Muller on a pair (x, y):
// u = x 2^-32 + 2^-33, v = y 2^-32 2pi + 2^-32 pi, s = sqrt(-2 log u), (s sin v, s cos v).
// On a GPU cuRAND computes sin and cos with the fast __sincosf; the emulation takes cuRAND's own
// host branch (sinf, cosf), so emulated normals are closer to the CPU's than a GPU's are.
// curand_normal() returns the first of a pair and caches the second (boxmuller_flag).
#pragma once
#include <cmath>
#include <cstdint>

#include "curand.h"
#include "ll_emu.h"

struct curandStatePhilox4_32_10 {
  uint4 ctr;
  uint4 output;
  uint2 key;
  unsigned int STATE;
  int boxmuller_flag;
  int boxmuller_flag_double;
  float boxmuller_extra;
  double boxmuller_extra_double;
};
typedef struct curandStatePhilox4_32_10 curandStatePhilox4_32_10_t;

namespace ll::emu::curand_detail {

constexpr unsigned kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;  // Weyl key increments
constexpr unsigned kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;  // round multipliers
constexpr float k2pow32inv = 2.3283064e-10f;
constexpr float k2pow32inv2pi = 2.3283064e-10f * 6.2831855f;

inline uint4 round(uint4 c, uint2 k) {
  const uint64_t p0 = static_cast<uint64_t>(kM0) * c.x;
  const uint64_t p1 = static_cast<uint64_t>(kM1) * c.z;
  const unsigned hi0 = static_cast<unsigned>(p0 >> 32), lo0 = static_cast<unsigned>(p0);
  const unsigned hi1 = static_cast<unsigned>(p1 >> 32), lo1 = static_cast<unsigned>(p1);
  return uint4{hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0};
}

inline uint4 philox4x32_10(uint4 c, uint2 k) {
  for (int r = 0; r < 9; ++r) {
    c = round(c, k);
    k.x += kW0;
    k.y += kW1;
  }
  return round(c, k);
}

// ctr += 1 (128-bit).
inline void incr(curandStatePhilox4_32_10_t* s) {
  if (++s->ctr.x) return;
  if (++s->ctr.y) return;
  if (++s->ctr.z) return;
  ++s->ctr.w;
}

// ctr += n on the low 64 bits with cuRAND's carry into the high half (verbatim logic).
inline void incr(curandStatePhilox4_32_10_t* s, unsigned long long n) {
  const unsigned nlo = static_cast<unsigned>(n);
  unsigned nhi = static_cast<unsigned>(n >> 32);
  s->ctr.x += nlo;
  if (s->ctr.x < nlo) nhi++;
  s->ctr.y += nhi;
  if (nhi <= s->ctr.y) return;
  if (++s->ctr.z) return;
  ++s->ctr.w;
}

// ctr.zw += n (subsequences).
inline void incr_hi(curandStatePhilox4_32_10_t* s, unsigned long long n) {
  const unsigned nlo = static_cast<unsigned>(n);
  unsigned nhi = static_cast<unsigned>(n >> 32);
  s->ctr.z += nlo;
  if (s->ctr.z < nlo) nhi++;
  s->ctr.w += nhi;
}

inline float uniform(unsigned x) { return x * k2pow32inv + (k2pow32inv / 2.0f); }

inline float2 box_muller(unsigned x, unsigned y) {
  const float u = x * k2pow32inv + (k2pow32inv / 2);
  const float v = y * k2pow32inv2pi + (k2pow32inv2pi / 2);
  const float s = sqrtf(-2.0f * logf(u));
  return float2{sinf(v) * s, cosf(v) * s};
}

}  // namespace ll::emu::curand_detail

inline void skipahead(unsigned long long n, curandStatePhilox4_32_10_t* state) {
  state->STATE += static_cast<unsigned>(n & 3);
  n /= 4;
  if (state->STATE > 3) {
    n += 1;
    state->STATE -= 4;
  }
  ll::emu::curand_detail::incr(state, n);
  state->output = ll::emu::curand_detail::philox4x32_10(state->ctr, state->key);
}

inline void skipahead_sequence(unsigned long long n, curandStatePhilox4_32_10_t* state) {
  ll::emu::curand_detail::incr_hi(state, n);
  state->output = ll::emu::curand_detail::philox4x32_10(state->ctr, state->key);
}

inline void curand_init(unsigned long long seed, unsigned long long subsequence,
                        unsigned long long offset, curandStatePhilox4_32_10_t* state) {
  state->ctr = make_uint4(0, 0, 0, 0);
  state->key.x = static_cast<unsigned>(seed);
  state->key.y = static_cast<unsigned>(seed >> 32);
  state->STATE = 0;
  state->boxmuller_flag = 0;
  state->boxmuller_flag_double = 0;
  state->boxmuller_extra = 0.f;
  state->boxmuller_extra_double = 0.;
  skipahead_sequence(subsequence, state);
  skipahead(offset, state);
}

inline unsigned int curand(curandStatePhilox4_32_10_t* state) {
  // Invariant: output holds the current block, STATE the lane to return next.
  const unsigned lanes[4] = {state->output.x, state->output.y, state->output.z, state->output.w};
  const unsigned ret = lanes[state->STATE++ & 3];
  if (state->STATE == 4) {
    ll::emu::curand_detail::incr(state);
    state->output = ll::emu::curand_detail::philox4x32_10(state->ctr, state->key);
    state->STATE = 0;
  }
  return ret;
}

inline uint4 curand4(curandStatePhilox4_32_10_t* state) {
  const uint4 tmp = state->output;
  ll::emu::curand_detail::incr(state);
  state->output = ll::emu::curand_detail::philox4x32_10(state->ctr, state->key);
  const uint4 next = state->output;
  switch (state->STATE) {
    case 1: return uint4{tmp.y, tmp.z, tmp.w, next.x};
    case 2: return uint4{tmp.z, tmp.w, next.x, next.y};
    case 3: return uint4{tmp.w, next.x, next.y, next.z};
    default: return tmp;
  }
}

inline float curand_uniform(curandStatePhilox4_32_10_t* state) {
  return ll::emu::curand_detail::uniform(curand(state));
}

inline float4 curand_uniform4(curandStatePhilox4_32_10_t* state) {
  const uint4 x = curand4(state);
  using ll::emu::curand_detail::uniform;
  return float4{uniform(x.x), uniform(x.y), uniform(x.z), uniform(x.w)};
}

inline float curand_normal(curandStatePhilox4_32_10_t* state) {
  constexpr int kExtraFlagNormal = 0x00000001;  // cuRAND's EXTRA_FLAG_NORMAL
  if (state->boxmuller_flag != kExtraFlagNormal) {
    const unsigned x = curand(state);
    const unsigned y = curand(state);
    const float2 v = ll::emu::curand_detail::box_muller(x, y);
    state->boxmuller_extra = v.y;
    state->boxmuller_flag = kExtraFlagNormal;
    return v.x;
  }
  state->boxmuller_flag = 0;
  return state->boxmuller_extra;
}

inline float2 curand_normal2(curandStatePhilox4_32_10_t* state) {
  const unsigned x = curand(state);
  const unsigned y = curand(state);
  return ll::emu::curand_detail::box_muller(x, y);
}

inline float4 curand_normal4(curandStatePhilox4_32_10_t* state) {
  const uint4 x = curand4(state);
  const float2 a = ll::emu::curand_detail::box_muller(x.x, x.y);
  const float2 b = ll::emu::curand_detail::box_muller(x.z, x.w);
  return float4{a.x, a.y, b.x, b.y};
}
