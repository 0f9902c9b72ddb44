#include "data/paired.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/common/philox.h"

namespace ll::data {

PairTask parse_pair_task(const std::string& name) {
  if (name == "edges") return PairTask::Edges;
  if (name == "inpaint") return PairTask::Inpaint;
  throw std::invalid_argument("--task must be edges or inpaint, got '" + name + "'");
}

const char* pair_task_name(PairTask task) { return task == PairTask::Edges ? "edges" : "inpaint"; }

namespace {

// Sobel edges of one (C, H, W) image into `out` (C, H, W): the magnitude sqrt(gx^2 + gy^2) of the
// 3x3 Sobel derivatives of the channel mean, pixels outside the image read as 0.
void sobel_edges(const float* img, int64_t C, int64_t H, int64_t W, float threshold, float* out) {
  auto at = [&](int64_t y, int64_t x) -> float {
    if (y < 0 || y >= H || x < 0 || x >= W) return 0.0f;
    float s = 0.0f;
    for (int64_t c = 0; c < C; ++c) s += img[(c * H + y) * W + x];
    return s / static_cast<float>(C);
  };
  for (int64_t y = 0; y < H; ++y) {
    for (int64_t x = 0; x < W; ++x) {
      // Kernels [-1 0 1; -2 0 2; -1 0 1] (d/dx) and its transpose (d/dy).
      const float gx = (at(y - 1, x + 1) + 2.0f * at(y, x + 1) + at(y + 1, x + 1)) -
                       (at(y - 1, x - 1) + 2.0f * at(y, x - 1) + at(y + 1, x - 1));
      const float gy = (at(y + 1, x - 1) + 2.0f * at(y + 1, x) + at(y + 1, x + 1)) -
                       (at(y - 1, x - 1) + 2.0f * at(y - 1, x) + at(y - 1, x + 1));
      const float e = std::sqrt(gx * gx + gy * gy) > threshold ? 1.0f : 0.0f;
      for (int64_t c = 0; c < C; ++c) out[(c * H + y) * W + x] = e;
    }
  }
}

}  // namespace

Tensor make_pair_inputs(const Tensor& targets, const std::vector<int64_t>& indices, const PairOptions& o) {
  if (targets.dim() != 4 || targets.device() != Device::CPU) {
    throw std::invalid_argument("make_pair_inputs: targets must be a (B, C, H, W) CPU tensor, got " + targets.str());
  }
  const int64_t B = targets.size(0), C = targets.size(1), H = targets.size(2), W = targets.size(3);
  if (static_cast<int64_t>(indices.size()) != B) {
    throw std::invalid_argument("make_pair_inputs: " + std::to_string(indices.size()) + " indices for " +
                                std::to_string(B) + " images");
  }
  if (o.task == PairTask::Inpaint && (o.mask_size < 1 || o.mask_size > H || o.mask_size > W)) {
    throw std::invalid_argument("--mask-size must be in [1, " + std::to_string(std::min(H, W)) + "], got " +
                                std::to_string(o.mask_size));
  }
  const Tensor& src = targets;  // tensors are always contiguous (engine/tensor.h)
  Tensor out = Tensor::empty(targets.shape());
  const int64_t plane = C * H * W;
  for (int64_t b = 0; b < B; ++b) {
    const float* img = src.data() + b * plane;
    float* dst = out.data() + b * plane;
    if (o.task == PairTask::Edges) {
      sobel_edges(img, C, H, W, o.edge_threshold, dst);
      continue;
    }
    // Inpaint: the hole's corner from raw numbers 0 and 1 of stream (seed, subsequence = index);
    // the modulo's bias over 2^32 is below 1e-8.
    const uint64_t sub = static_cast<uint64_t>(indices[static_cast<size_t>(b)]);
    const int64_t top = static_cast<int64_t>(philox_raw(o.seed, sub, 0) % static_cast<uint32_t>(H - o.mask_size + 1));
    const int64_t left = static_cast<int64_t>(philox_raw(o.seed, sub, 1) % static_cast<uint32_t>(W - o.mask_size + 1));
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t y = 0; y < H; ++y) {
        for (int64_t x = 0; x < W; ++x) {
          const int64_t j = (c * H + y) * W + x;
          const bool hole = y >= top && y < top + o.mask_size && x >= left && x < left + o.mask_size;
          dst[j] = hole ? 0.5f : img[j];
        }
      }
    }
  }
  return out;
}

}  // namespace ll::data
