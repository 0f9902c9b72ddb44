// shapes.h: a synthetic data set of white shapes on black, after dSprites (Matthey, Higgins,
// Hassabis, Lerchner 2017), whose images are a known function of five independent factors:
//
//   factor     values                                         index range
//   shape      square, ellipse, heart                         0..2
//   scale      0.5, 0.6, ..., 1.0                             0..5
//   rotation   k * 2pi / 40 (k = 0..39)                       0..39
//   x, y       k / 31 across the frame (y grows downward)     0..31 each
//
// That is what disentanglement studies need (beta-VAE and its metrics): ground-truth factors per
// image. Differences from dSprites, on purpose: rotations stop short of 2pi (dSprites repeats
// angle 0 as 2pi); the size is configurable; the edges are anti-aliased (4 x 4 samples per pixel)
// rather than binary; and a colored variant draws each shape in a color from a fixed palette, a sixth
// factor independent of the other five. The square looks the same every quarter turn and the ellipse
// every half turn, as in dSprites; the heart needs the full turn.
//
// Images are drawn by our own rasterizer from factor indices alone (constant tables for the angles,
// no libm), and the factors of image i come from Philox stream (seed, i), so the same options give
// the same bytes on every machine, and the first k images of a set are the same for any n >= k.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace ll::data {

// Indices of the factors in a ShapeFactors, in dSprites' order.
enum ShapeFactor : int { kShapeFactorShape = 0, kShapeFactorScale, kShapeFactorRotation, kShapeFactorX, kShapeFactorY };
using ShapeFactors = std::array<int32_t, 5>;               // one index per factor
inline constexpr ShapeFactors kShapeFactorSizes = {3, 6, 40, 32, 32};
inline constexpr int32_t kShapesPaletteSize = 8;           // colors of the colored variant

struct ShapesOptions {
  int64_t n = 20000;        // images, factors drawn uniformly and independently
  int64_t size = 64;        // side in pixels, 16..1024
  int64_t channels = 1;     // 1: white shapes; 3: each shape in a random palette color
  uint64_t seed = 0;
  bool full_grid = false;   // every factor combination once, in dSprites' order (n is ignored)
};

struct ShapesData {
  Dataset dataset;                    // labels = shape index; class_names square, ellipse, heart
  std::vector<ShapeFactors> factors;  // per image
  std::vector<int32_t> colors;        // per image palette index (channels 3); empty for gray
};

Dataset make_shapes(const ShapesOptions& options);
ShapesData make_shapes_with_factors(const ShapesOptions& options);

// The full grid: 3 * 6 * 40 * 32 * 32 = 737280 combinations, y varying fastest (dSprites' order).
int64_t shapes_grid_count();
ShapeFactors shapes_grid_factors(int64_t index);
int64_t shapes_grid_index(const ShapeFactors& factors);

// What the indices mean. The scale is relative to the largest shape; positions are in [0, 1].
double shapes_scale(int32_t index);
double shapes_rotation(int32_t index);  // radians, counterclockwise as seen on screen
double shapes_position(int32_t index);
// Where position `index` puts the shape's center, in pixel coordinates (pixel j spans [j, j + 1)),
// along x or y of a `size` image. The frame keeps a margin so that every shape at every rotation
// lies wholly inside.
double shapes_center_px(int32_t index, int64_t size);
std::array<uint8_t, 3> shapes_palette(int32_t index);  // RGB
const std::vector<std::string>& shapes_class_names();

// Draws one image into `out` (channels x size x size bytes, planar, overwritten). `color` is a
// palette index (ignored for one channel).
void render_shape(uint8_t* out, int64_t size, int64_t channels, const ShapeFactors& factors, int32_t color = 0);

// load_dataset's names: "shapes" and "shapes-color", each optionally with ":N" training images
// (default 20000). The test split has a tenth as many (at least 1) from another seed. Both variants
// share their factors: "shapes-color" is "shapes" painted.
bool is_shapes_name(const std::string& name);
ShapesOptions shapes_options_for(const std::string& name, Split split);  // std::invalid_argument on a bad N

}  // namespace ll::data
