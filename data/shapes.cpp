// shapes.cpp: the rasterizer and the factor sampling of shapes.h.
#include "data/shapes.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/common/philox.h"

namespace ll::data {
namespace {

// sin(k * pi / 20) for k = 0..10, as constants (Python's math.sin, correctly rounded doubles): every
// rotation angle is a multiple of pi / 20, and a table does not depend on the machine's libm, whose
// sin and cos may differ in the last bit between versions and so flip an edge sample.
constexpr double kSinTable[11] = {0.0,
                                  0.15643446504023087,
                                  0.3090169943749474,
                                  0.45399049973954675,
                                  0.5877852522924731,
                                  0.7071067811865475,
                                  0.8090169943749475,
                                  0.8910065241883678,
                                  0.9510565162951535,
                                  0.9876883405951378,
                                  1.0};

// sin(k * pi / 20) for any k, by the quadrant of the angle.
double sin_pi_20(int32_t k) {
  k %= 40;
  if (k < 0) k += 40;
  const int32_t quadrant = k / 10, r = k % 10;
  switch (quadrant) {
    case 0: return kSinTable[r];
    case 1: return kSinTable[10 - r];
    case 2: return -kSinTable[r];
    default: return -kSinTable[10 - r];
  }
}

// The shapes in their own frame (u right, v up), each inside the unit circle so that any rotation of
// the largest one fits the frame's margin. Sizes are chosen to give the three similar areas
// (square 1.96, ellipse 1.73, heart 2.3 in these units).
constexpr double kSquareHalfSide = 0.7;                   // circumradius 0.99
constexpr double kEllipseA = 1.0, kEllipseB = 0.55;       // semi-axes along u and v
// The heart (x^2 + y^2 - 1)^3 - x^2 y^3 <= 0 spans x in [-1.14, 1.14], y in [-1, 1.24]; seen from
// (0, 0.25) its farthest point is the bottom tip at distance 1.25, so it is shifted by 0.25 and shrunk
// by 1.26 to sit inside the unit circle, upright (lobes up, tip down) at rotation 0.
constexpr double kHeartShift = 0.25, kHeartExtent = 1.26;

bool inside(int32_t shape, double u, double v) {
  switch (shape) {
    case 0: return std::fabs(u) <= kSquareHalfSide && std::fabs(v) <= kSquareHalfSide;
    case 1: {
      const double a = u / kEllipseA, b = v / kEllipseB;
      return a * a + b * b <= 1.0;
    }
    default: {
      const double x = u * kHeartExtent, y = v * kHeartExtent + kHeartShift;
      const double r = x * x + y * y - 1.0;
      return r * r * r - x * x * y * y * y <= 0.0;
    }
  }
}

// The radius, in pixels, of the circle that holds the largest shape (scale 1): about a third of the
// frame across, as in dSprites.
double max_radius_px(int64_t size) { return 0.16 * static_cast<double>(size); }
// Centers stay this far from the edges; one pixel more than the radius keeps anti-aliased edges off
// the border too.
double margin_px(int64_t size) { return std::ceil(max_radius_px(size)) + 1.0; }

const std::array<std::array<uint8_t, 3>, kShapesPaletteSize> kPalette = {{
    {255, 255, 255},  // white
    {255, 64, 64},    // red
    {64, 224, 64},    // green
    {64, 128, 255},   // blue
    {255, 224, 32},   // yellow
    {255, 64, 255},   // magenta
    {32, 224, 224},   // cyan
    {255, 144, 32},   // orange
}};

// Uniform index in [0, count) from a raw 32-bit number: the top bits of raw * count (no modulo bias
// worth the name for counts this small, and no division).
int32_t uniform_index(uint32_t raw, int32_t count) {
  return static_cast<int32_t>((static_cast<uint64_t>(raw) * static_cast<uint64_t>(count)) >> 32);
}

void check_options(const ShapesOptions& o) {
  if (o.size < 16 || o.size > 1024) {
    throw std::invalid_argument("shapes: size must be 16..1024 pixels, got " + std::to_string(o.size));
  }
  if (o.channels != 1 && o.channels != 3) {
    throw std::invalid_argument("shapes: channels must be 1 (white) or 3 (colored), got " + std::to_string(o.channels));
  }
  if (!o.full_grid && o.n < 1) throw std::invalid_argument("shapes: n must be positive, got " + std::to_string(o.n));
}

}  // namespace

int64_t shapes_grid_count() {
  int64_t count = 1;
  for (const int32_t s : kShapeFactorSizes) count *= s;
  return count;
}

ShapeFactors shapes_grid_factors(int64_t index) {
  if (index < 0 || index >= shapes_grid_count()) {
    throw std::out_of_range("shapes: grid index " + std::to_string(index) + " is outside 0.." +
                            std::to_string(shapes_grid_count() - 1));
  }
  ShapeFactors f{};
  for (int k = 4; k >= 0; --k) {  // the last factor varies fastest
    f[k] = static_cast<int32_t>(index % kShapeFactorSizes[k]);
    index /= kShapeFactorSizes[k];
  }
  return f;
}

int64_t shapes_grid_index(const ShapeFactors& f) {
  int64_t index = 0;
  for (int k = 0; k < 5; ++k) {
    if (f[k] < 0 || f[k] >= kShapeFactorSizes[k]) {
      throw std::out_of_range("shapes: factor " + std::to_string(k) + " is " + std::to_string(f[k]) + ", expected 0.." +
                              std::to_string(kShapeFactorSizes[k] - 1));
    }
    index = index * kShapeFactorSizes[k] + f[k];
  }
  return index;
}

double shapes_scale(int32_t index) { return (5.0 + index) / 10.0; }
double shapes_rotation(int32_t index) { return index * (2.0 * 3.14159265358979323846 / 40.0); }
double shapes_position(int32_t index) { return index / 31.0; }

double shapes_center_px(int32_t index, int64_t size) {
  const double margin = margin_px(size);
  return margin + index * (static_cast<double>(size) - 2.0 * margin) / 31.0;
}

std::array<uint8_t, 3> shapes_palette(int32_t index) {
  if (index < 0 || index >= kShapesPaletteSize) {
    throw std::out_of_range("shapes: palette index " + std::to_string(index) + " is outside 0.." +
                            std::to_string(kShapesPaletteSize - 1));
  }
  return kPalette[index];
}

const std::vector<std::string>& shapes_class_names() {
  static const std::vector<std::string> names = {"square", "ellipse", "heart"};
  return names;
}

void render_shape(uint8_t* out, int64_t size, int64_t channels, const ShapeFactors& f, int32_t color) {
  shapes_grid_index(f);  // validates the indices
  const std::array<uint8_t, 3> rgb = channels == 3 ? shapes_palette(color) : std::array<uint8_t, 3>{255, 255, 255};
  const int64_t plane = size * size;
  for (int64_t i = 0; i < channels * plane; ++i) out[i] = 0;

  const double cx = shapes_center_px(f[kShapeFactorX], size), cy = shapes_center_px(f[kShapeFactorY], size);
  const double radius = shapes_scale(f[kShapeFactorScale]) * max_radius_px(size);
  const double sin_t = sin_pi_20(f[kShapeFactorRotation]);       // angle k * 2pi/40 = k * pi/20
  const double cos_t = sin_pi_20(f[kShapeFactorRotation] + 10);  // cos a = sin(a + pi/2)

  // Only pixels that the shape's circle can touch are sampled.
  const int64_t x_lo = std::max<int64_t>(0, static_cast<int64_t>(std::floor(cx - radius)));
  const int64_t x_hi = std::min<int64_t>(size - 1, static_cast<int64_t>(std::floor(cx + radius)));
  const int64_t y_lo = std::max<int64_t>(0, static_cast<int64_t>(std::floor(cy - radius)));
  const int64_t y_hi = std::min<int64_t>(size - 1, static_cast<int64_t>(std::floor(cy + radius)));
  for (int64_t py = y_lo; py <= y_hi; ++py) {
    for (int64_t px = x_lo; px <= x_hi; ++px) {
      // Coverage from a 4 x 4 grid of samples at the centers of the pixel's sixteenths.
      int covered = 0;
      for (int sy = 0; sy < 4; ++sy) {
        for (int sx = 0; sx < 4; ++sx) {
          // Into the shape's frame: relative to the center, y flipped to point up, in units of the
          // radius, then rotated back by the shape's angle.
          const double x = (static_cast<double>(px) + (sx + 0.5) / 4.0 - cx) / radius;
          const double y = (cy - (static_cast<double>(py) + (sy + 0.5) / 4.0)) / radius;
          const double u = x * cos_t + y * sin_t;
          const double v = y * cos_t - x * sin_t;
          covered += inside(f[kShapeFactorShape], u, v) ? 1 : 0;
        }
      }
      // value * covered / 16, rounded, in integers: exact everywhere.
      for (int64_t c = 0; c < channels; ++c) {
        out[c * plane + py * size + px] = static_cast<uint8_t>((covered * rgb[c] + 8) / 16);
      }
    }
  }
}

ShapesData make_shapes_with_factors(const ShapesOptions& o) {
  check_options(o);
  const int64_t n = o.full_grid ? shapes_grid_count() : o.n;
  ShapesData out;
  Dataset& ds = out.dataset;
  ds.name = o.channels == 3 ? "shapes-color" : "shapes";
  ds.n = n;
  ds.channels = o.channels;
  ds.height = ds.width = o.size;
  ds.class_names = shapes_class_names();
  ds.images.resize(static_cast<size_t>(n * ds.image_size()));
  ds.labels.resize(static_cast<size_t>(n));
  out.factors.resize(static_cast<size_t>(n));
  if (o.channels == 3) out.colors.resize(static_cast<size_t>(n));

  // Image i reads raw numbers 0..5 of Philox stream (seed, i): one per factor, then the color. Each
  // image is a pure function of (seed, i), so the loop may run in any order on any number of threads.
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    ShapeFactors f{};
    if (o.full_grid) {
      f = shapes_grid_factors(i);
    } else {
      for (int k = 0; k < 5; ++k) f[k] = uniform_index(philox_raw(o.seed, i, k), kShapeFactorSizes[k]);
    }
    const int32_t color = o.channels == 3 ? uniform_index(philox_raw(o.seed, i, 5), kShapesPaletteSize) : 0;
    render_shape(ds.images.data() + i * ds.image_size(), o.size, o.channels, f, color);
    out.factors[i] = f;
    ds.labels[i] = f[kShapeFactorShape];
    if (o.channels == 3) out.colors[i] = color;
  }
  return out;
}

Dataset make_shapes(const ShapesOptions& o) { return std::move(make_shapes_with_factors(o).dataset); }

bool is_shapes_name(const std::string& name) {
  const std::string base = name.substr(0, name.find(':'));
  return base == "shapes" || base == "shapes-color";
}

ShapesOptions shapes_options_for(const std::string& name, Split split) {
  const size_t colon = name.find(':');
  ShapesOptions o;
  o.channels = name.substr(0, colon) == "shapes-color" ? 3 : 1;
  int64_t train_n = 20000;
  if (colon != std::string::npos) {
    const std::string count = name.substr(colon + 1);
    const bool digits = !count.empty() && count.size() <= 9 &&
                        count.find_first_not_of("0123456789") == std::string::npos;
    if (!digits || std::stoll(count) < 1) {
      throw std::invalid_argument("data set '" + name +
                                  "': expected a positive image count after ':' (e.g. shapes:5000)");
    }
    train_n = std::stoll(count);
  }
  // Different seeds keep the splits' draws independent; the color variant shares the gray one's.
  o.seed = split == Split::Train ? 1 : 2;
  o.n = split == Split::Train ? train_n : std::max<int64_t>(1, train_n / 10);
  return o;
}

}  // namespace ll::data
