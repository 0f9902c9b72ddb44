// philox.h: the Philox 4x32-10 counter-based generator, bit-compatible with cuRAND.
//
// Philox (Salmon, Moraes, Dror, Shaw, "Parallel Random Numbers: As Easy as 1, 2, 3", SC 2011) maps a
// 128-bit counter and a 64-bit key to 128 random bits through 10 rounds of multiply-xor. Because the
// output is a pure function of (key, counter), any element of a random stream can be computed
// directly, in any order, on any device: no state to carry, and a backward pass can regenerate the
// noise of its forward pass instead of storing it.
//
// The stream convention of latentlab is cuRAND's (curand_kernel.h, curandStatePhilox4_32_10_t):
//   curand_init(seed, subsequence, offset, &s) sets
//     key     = (lo32(seed), hi32(seed))
//     counter = (lo32(offset/4), hi32(offset/4), lo32(subsequence), hi32(subsequence))
//   and successive curand(&s) calls return the lanes x, y, z, w of philox(counter, key), starting at
//   lane offset % 4, then increment the counter.
// So raw number n of stream (seed, subsequence) is lane n%4 of philox4x32_10({n/4, subsequence}, seed):
// philox_raw() below. A CUDA kernel that calls curand_init(seed, subseq, n, &s); curand(&s) gets the
// same 32 bits as philox_raw(seed, subseq, n) here.
//
// Uniform floats follow cuRAND's _curand_uniform: u = x * 2^-32 + 2^-33, in (0, 1].
// Normal floats follow cuRAND's curand_normal4 / Box-Muller (curand_normal.h): the four lanes
// (x, y, z, w) of one block give the normals
//   s(x)*sin(v(y)), s(x)*cos(v(y)), s(z)*sin(v(w)), s(z)*cos(v(w)),
//   u = a * 2^-32 + 2^-33,  v = b * 2^-32 * 2pi + 2^-33 * 2pi,  s = sqrt(-2 log u).
// So normal number k of a stream uses block k/4. On the GPU cuRAND uses the fast __sincosf, so CPU
// and GPU normals agree to a few ulps (not bit for bit); the raw integers agree exactly.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/hd.h"

namespace ll {

struct Philox4 {
  uint32_t x, y, z, w;
};

// Constants from Salmon et al. 2011 (also Random123 and cuRAND).
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1
constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;

LL_HD Philox4 philox_round(Philox4 c, uint32_t k0, uint32_t k1) {
  const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c.x;
  const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c.z;
  const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
  const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
  return Philox4{hi1 ^ c.y ^ k0, lo1, hi0 ^ c.w ^ k1, lo0};
}

// Ten rounds with the key bumped by the Weyl constants between rounds.
LL_HD Philox4 philox4x32_10(Philox4 counter, uint32_t k0, uint32_t k1) {
  Philox4 c = counter;
  for (int round = 0; round < 9; ++round) {
    c = philox_round(c, k0, k1);
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return philox_round(c, k0, k1);
}

// The 4 raw numbers of block `block` (= n/4) of stream (seed, subsequence).
LL_HD Philox4 philox_block(uint64_t seed, uint64_t subsequence, uint64_t block) {
  const Philox4 ctr{static_cast<uint32_t>(block), static_cast<uint32_t>(block >> 32),
                    static_cast<uint32_t>(subsequence), static_cast<uint32_t>(subsequence >> 32)};
  return philox4x32_10(ctr, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

LL_HD uint32_t philox_lane(const Philox4& b, uint32_t lane) {
  return lane == 0 ? b.x : lane == 1 ? b.y : lane == 2 ? b.z : b.w;
}

// Raw number n of stream (seed, subsequence): equals curand() after curand_init(seed, subsequence, n).
LL_HD uint32_t philox_raw(uint64_t seed, uint64_t subsequence, uint64_t n) {
  return philox_lane(philox_block(seed, subsequence, n >> 2), static_cast<uint32_t>(n & 3));
}

// cuRAND's uint -> float in (0, 1].
LL_HD float philox_to_uniform(uint32_t x) {
  constexpr float k2pow32inv = 2.3283064e-10f;  // CURAND_2POW32_INV
  return static_cast<float>(x) * k2pow32inv + k2pow32inv / 2.0f;
}

// Uniform number n of stream (seed, subsequence).
LL_HD float philox_uniform(uint64_t seed, uint64_t subsequence, uint64_t n) {
  return philox_to_uniform(philox_raw(seed, subsequence, n));
}

// Box-Muller on two raw numbers; `second` picks the cos branch. Matches _curand_box_muller.
LL_HD float philox_box_muller(uint32_t a, uint32_t b, bool second) {
  constexpr float k2pow32inv = 2.3283064e-10f;
  constexpr float k2pow32inv2pi = 2.3283064e-10f * 6.2831855f;  // CURAND_2POW32_INV_2PI
  const float u = static_cast<float>(a) * k2pow32inv + k2pow32inv / 2.0f;
  const float v = static_cast<float>(b) * k2pow32inv2pi + k2pow32inv2pi / 2.0f;
  const float s = sqrtf(-2.0f * logf(u));
  return s * (second ? cosf(v) : sinf(v));
}

// Standard normal number k of stream (seed, subsequence), as curand_normal4 lays them out.
LL_HD float philox_normal(uint64_t seed, uint64_t subsequence, uint64_t k) {
  const Philox4 b = philox_block(seed, subsequence, k >> 2);
  const uint32_t lane = static_cast<uint32_t>(k & 3);
  return lane < 2 ? philox_box_muller(b.x, b.y, lane == 1) : philox_box_muller(b.z, b.w, lane == 3);
}

// Where a kernel reads its random numbers: stream (seed, subsequence), element i of the op uses
// number offset + i. The engine's Generator hands out non-overlapping offsets, multiples of 4 so that
// each op starts on a Philox block boundary.
// offset_device (CUDA kernels only; null elsewhere): inside a step captured as a CUDA graph the
// offset changes from one launch of the graph to the next, so the kernel reads it from this device
// word when it runs (engine/cuda_graph.h); `offset` then holds its value at the capture, a multiple
// of 4 as every later one is, so the launch shape computed from it stays right.
struct PhiloxStream {
  uint64_t seed = 0;
  uint64_t subsequence = 0;
  uint64_t offset = 0;
  const uint64_t* offset_device = nullptr;
};

}  // namespace ll
