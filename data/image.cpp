// image.cpp: PNG files and image grids (image.h).
#include "data/image.h"

#include "data/idx.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

// stb_image_write, compiled here with internal linkage (STATIC) so that another file of the program
// may include its own copy without duplicate symbols. NO_STDIO: we encode into memory and write the
// file ourselves, atomically. Its code is not ours to keep warning-free, hence the pragmas.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STBI_WRITE_NO_STDIO
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb_image_write.h>
#pragma GCC diagnostic pop

namespace ll::data {
namespace {

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* bytes = static_cast<const uint8_t*>(data);
  out->insert(out->end(), bytes, bytes + size);
}

// Writes bytes to `path` through `path.tmp.<pid>` renamed into place, so that a viewer never sees a
// half-written image and a crash leaves the previous file intact.
void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  auto fail = [&](const std::string& what, int err) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write PNG '" + path + "': " + what + ": " + std::strerror(err));
  };
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("creating '" + tmp + "'", errno);
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const int write_errno = errno;
  if (std::fclose(f) != 0) fail("closing '" + tmp + "'", errno);
  if (!written) fail("writing '" + tmp + "'", write_errno);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("renaming '" + tmp + "' into place", errno);
}

std::string size_string(const Image& image) {
  return std::to_string(image.width) + "x" + std::to_string(image.height) + "x" + std::to_string(image.channels);
}

}  // namespace

namespace {

// The PNG bytes of `image`; `what` starts the error messages ("save_png 'x.png'", "encode_png").
std::vector<uint8_t> encode_checked(const Image& image, const std::string& what) {
  if (image.width <= 0 || image.height <= 0 || image.channels < 1 || image.channels > 4) {
    throw std::invalid_argument(what + ": cannot encode a " + size_string(image) +
                                " image (width x height x channels; channels must be 1 to 4)");
  }
  // stb takes int sizes and an int row stride.
  if (image.width * image.channels > INT_MAX || image.height > INT_MAX) {
    throw std::invalid_argument(what + ": image " + size_string(image) + " is too large");
  }
  if (static_cast<int64_t>(image.pixels.size()) != image.width * image.height * image.channels) {
    throw std::invalid_argument(what + ": a " + size_string(image) + " image needs " +
                                std::to_string(image.width * image.height * image.channels) + " bytes, it has " +
                                std::to_string(image.pixels.size()));
  }
  std::vector<uint8_t> png;
  const int w = static_cast<int>(image.width), h = static_cast<int>(image.height);
  const int c = static_cast<int>(image.channels);
  if (!stbi_write_png_to_func(append_bytes, &png, w, h, c, image.pixels.data(), w * c)) {
    throw std::runtime_error(what + ": PNG encoding failed");
  }
  return png;
}

}  // namespace

void save_png(const std::string& path, const Image& image) {
  write_file_atomically(path, encode_checked(image, "save_png '" + path + "'"));
}

std::vector<uint8_t> encode_png(const Image& image) { return encode_checked(image, "encode_png"); }

Image make_grid(const Tensor& images, int64_t nrow, int64_t padding, uint8_t pad_value, float lo, float hi,
                int64_t upscale) {
  check_arg(images.defined(), "make_grid", "undefined tensor");
  check_arg(images.is_cpu(), "make_grid", "images must be on the CPU, got " + images.str());
  check_arg(images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3) && images.size(0) > 0,
            "make_grid", "expected images (N >= 1, C = 1 or 3, H, W), got shape " + shape_str(images.shape()));
  check_arg(nrow >= 1 && padding >= 0 && upscale >= 1, "make_grid",
            "need nrow >= 1, padding >= 0 and upscale >= 1, got nrow " + std::to_string(nrow) + ", padding " +
                std::to_string(padding) + ", upscale " + std::to_string(upscale));
  check_arg(hi > lo, "make_grid", "need hi > lo, got lo " + std::to_string(lo) + ", hi " + std::to_string(hi));

  const int64_t n = images.size(0), c = images.size(1);
  const int64_t h = images.size(2) * upscale, w = images.size(3) * upscale;
  // torchvision's layout: xmaps images across, ymaps rows, each cell the image plus `padding` on its
  // top and left, and one more `padding` closing the bottom and right edges.
  const int64_t xmaps = std::min(nrow, n);
  const int64_t ymaps = (n + xmaps - 1) / xmaps;
  const int64_t cell_h = h + padding, cell_w = w + padding;
  Image grid;
  grid.channels = c;
  grid.height = cell_h * ymaps + padding;
  grid.width = cell_w * xmaps + padding;
  grid.pixels.assign(static_cast<size_t>(grid.height * grid.width * c), pad_value);

  const float* src = images.data();
  const int64_t src_h = images.size(2), src_w = images.size(3);
  for (int64_t k = 0; k < n; ++k) {
    const int64_t top = (k / xmaps) * cell_h + padding, left = (k % xmaps) * cell_w + padding;
    for (int64_t ch = 0; ch < c; ++ch) {
      const float* plane = src + (k * c + ch) * src_h * src_w;
      for (int64_t y = 0; y < h; ++y) {
        for (int64_t x = 0; x < w; ++x) {
          // torchvision's save_image: clamp to [0, 1], then floor(255 t + 0.5). NaN maps to 0.
          float t = (plane[(y / upscale) * src_w + x / upscale] - lo) / (hi - lo);
          t = t > 0.0f ? (t < 1.0f ? t : 1.0f) : 0.0f;
          const auto v = static_cast<uint8_t>(std::floor(t * 255.0f + 0.5f));
          grid.pixels[static_cast<size_t>(((top + y) * grid.width + left + x) * c + ch)] = v;
        }
      }
    }
  }
  return grid;
}

Image stack_vertical(const std::vector<Image>& parts) {
  if (parts.empty()) throw std::invalid_argument("stack_vertical: no images");
  Image out;
  out.width = parts[0].width;
  out.channels = parts[0].channels;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Image& p = parts[i];
    if (p.width != out.width || p.channels != out.channels) {
      throw std::invalid_argument("stack_vertical: image " + std::to_string(i) + " is " + size_string(p) +
                                  ", image 0 is " + size_string(parts[0]) +
                                  " (width x height x channels; widths and channels must agree)");
    }
    if (static_cast<int64_t>(p.pixels.size()) != p.width * p.height * p.channels) {
      throw std::invalid_argument("stack_vertical: image " + std::to_string(i) + " (" + size_string(p) +
                                  ") holds " + std::to_string(p.pixels.size()) + " bytes");
    }
    out.height += p.height;
    out.pixels.insert(out.pixels.end(), p.pixels.begin(), p.pixels.end());
  }
  return out;
}

void save_images_idx(const std::string& path, const Tensor& images) {
  check_arg(images.dim() == 4, "save_images_idx", "expects images (n, C, H, W), got " + images.str());
  const int64_t n = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
  IdxArray a;
  a.dims = C == 1 ? std::vector<int64_t>{n, H, W} : std::vector<int64_t>{n, C, H, W};
  const std::vector<float> v = images.to_vector();
  a.data.resize(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    a.data[i] = static_cast<uint8_t>(std::lround(std::clamp(v[i], 0.0f, 1.0f) * 255.0f));
  }
  write_idx(path, a);
}

}  // namespace ll::data
