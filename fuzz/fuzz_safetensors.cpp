// fuzz_safetensors.cpp: checkpoint files (engine/io/safetensors.h). The bytes go to
// ll::io::parse_safetensors, the whole of load_safetensors after the file is read: the header length,
// the JSON (duplicate keys, wrong types, non-UTF-8), dtypes, shapes that overflow, data_offsets that
// overlap, leave holes or point past the file. Its one documented error is ll::io::FormatError.
//
// What loads must be usable as the rest of latentlab uses it, so the target checks that too:
//   - every tensor holds product(shape) floats, and the product of its nonzero dimensions fits in
//     int64 (the engine's Tensor multiplies shapes in int64, in any order);
//   - a checkpoint of F32 tensors (what latentlab writes) serializes without an error and parses
//     back to the same metadata, names, shapes and bits.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>

#include "engine/io/safetensors.h"
#include "fuzz/common.h"

using ll::fuzz::check;
using ll::fuzz::same_bits;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ll::io::Checkpoint ckpt;
  try {
    ckpt = ll::io::parse_safetensors(std::span<const uint8_t>(data, size), "<fuzz>");
  } catch (const ll::io::FormatError&) {
    return 0;
  }
  bool all_f32 = true;
  for (const auto& [name, t] : ckpt.tensors) {
    uint64_t count = 1;
    bool empty = false;
    for (int64_t d : t.shape) {
      check(d >= 0);
      if (d == 0) {
        empty = true;
        continue;
      }
      check(!__builtin_mul_overflow(count, static_cast<uint64_t>(d), &count) &&
            count <= static_cast<uint64_t>(INT64_MAX));
    }
    check(t.data.size() == (empty ? 0 : count));
    all_f32 = all_f32 && t.dtype == ll::io::DType::F32;
  }
  if (all_f32) {
    const ll::io::Checkpoint back = ll::io::parse_safetensors(ll::io::serialize_safetensors(ckpt), "<round trip>");
    check(back.metadata == ckpt.metadata && back.tensors.size() == ckpt.tensors.size());
    for (const auto& [name, t] : ckpt.tensors) {
      const auto it = back.tensors.find(name);
      check(it != back.tensors.end() && it->second.dtype == t.dtype && it->second.shape == t.shape &&
            same_bits(it->second.data, t.data));
    }
  }
  return 0;
}
