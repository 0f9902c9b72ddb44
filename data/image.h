// image.h: pictures out of tensors: PNG files (stb_image_write) and torchvision-style grids.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ll::data {

// An 8-bit image in memory, row-major, interleaved channels (1 = gray, 3 = RGB).
struct Image {
  int64_t width = 0, height = 0, channels = 1;
  std::vector<uint8_t> pixels;  // height * width * channels
};

// Writes a PNG through a temporary file renamed into place; throws std::runtime_error naming the
// path on failure.
void save_png(const std::string& path, const Image& image);
// The same PNG in memory (what `latentlab serve` sends); std::invalid_argument for an image it
// cannot encode.
std::vector<uint8_t> encode_png(const Image& image);

// torchvision.utils.make_grid / save_image: images (N, C, H, W) with values in [lo, hi] (clamped,
// mapped to 0..255 as round(255 * (x - lo) / (hi - lo))), laid out `nrow` per row with `padding`
// pixels of `pad_value` (0..255) between and around them. C must be 1 or 3. `upscale` repeats each
// pixel upscale x upscale times (small images are easier to see at 2x).
Image make_grid(const Tensor& images, int64_t nrow = 8, int64_t padding = 2, uint8_t pad_value = 0, float lo = 0.0f,
                float hi = 1.0f, int64_t upscale = 1);

// Images (n, C, H, W) in [0, 1] (clamped) as an IDX file of bytes round(255 x): shaped (n, H, W) for
// gray images and (n, C, H, W) for color, as the training data's files, so that the same tools
// read generated, edited and real images.
void save_images_idx(const std::string& path, const Tensor& images);

// Stacks images vertically (same width and channels), e.g. a row of originals above their
// reconstructions.
Image stack_vertical(const std::vector<Image>& parts);

}  // namespace ll::data
