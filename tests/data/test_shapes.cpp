// test_shapes.cpp: the synthetic shapes data set: determinism, factor ranges and the full grid's
// order, that each image shows what its factors say (position, scale, shape, rotation), the colored
// variant, and load_dataset's "shapes" names.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <numbers>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "data/dataset.h"
#include "data/shapes.h"

namespace ll::data {
namespace {

constexpr int64_t kSize = 64;

std::vector<uint8_t> render(const ShapeFactors& f, int64_t channels = 1, int32_t color = 0, int64_t size = kSize) {
  std::vector<uint8_t> img(static_cast<size_t>(channels * size * size), 123);  // overwritten entirely
  render_shape(img.data(), size, channels, f, color);
  return img;
}

struct Moments {
  double mass = 0, cx = 0, cy = 0;  // total coverage (in pixels) and centroid (pixel coordinates)
};

// Coverage-weighted centroid of a one-channel image; pixel (x, y) stands at its center (x + .5, y + .5).
Moments moments(const std::vector<uint8_t>& img, int64_t size = kSize) {
  Moments m;
  for (int64_t y = 0; y < size; ++y) {
    for (int64_t x = 0; x < size; ++x) {
      const double w = img[y * size + x] / 255.0;
      m.mass += w;
      m.cx += w * (x + 0.5);
      m.cy += w * (y + 0.5);
    }
  }
  m.cx /= m.mass;
  m.cy /= m.mass;
  return m;
}

// FNV-1a of the bytes: a fingerprint to pin the exact output.
uint64_t fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (const uint8_t b : bytes) {
    h ^= b;
    h *= 1099511628211ull;
  }
  return h;
}

ShapesOptions opts(int64_t n, uint64_t seed, int64_t channels = 1) {
  ShapesOptions o;
  o.n = n;
  o.seed = seed;
  o.channels = channels;
  return o;
}

TEST(Shapes, SameSeedSameBytesOtherSeedOtherBytes) {
  const Dataset a = make_shapes(opts(200, 5));
  const Dataset b = make_shapes(opts(200, 5));
  const Dataset c = make_shapes(opts(200, 6));
  EXPECT_EQ(a.images, b.images);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_NE(a.images, c.images);

  // The first images of a larger set are the same images.
  const Dataset small = make_shapes(opts(50, 5));
  EXPECT_TRUE(std::equal(small.images.begin(), small.images.end(), a.images.begin()));
}

TEST(Shapes, BytesArePinned) {
  // Image i depends only on (seed, i) through Philox and our own arithmetic (no libm in the
  // rasterizer), so these hold on every machine; a change here changes every user's data set.
  const Dataset gray = make_shapes(opts(64, 7));
  const Dataset color = make_shapes(opts(64, 7, 3));
  EXPECT_EQ(fnv1a(gray.images), 0xa9955d4bd2f7bb85ull) << std::hex << fnv1a(gray.images);
  EXPECT_EQ(fnv1a(color.images), 0xe54181065e41aa59ull) << std::hex << fnv1a(color.images);
}

TEST(Shapes, FactorsCoverTheirRangesAndLabelsAreTheShape) {
  const ShapesData s = make_shapes_with_factors(opts(3000, 11));
  const Dataset& ds = s.dataset;
  ASSERT_EQ(ds.n, 3000);
  EXPECT_EQ(ds.channels, 1);
  EXPECT_EQ(ds.height, kSize);
  EXPECT_EQ(ds.width, kSize);
  EXPECT_EQ(ds.images.size(), static_cast<size_t>(3000 * kSize * kSize));
  EXPECT_EQ(ds.class_names, (std::vector<std::string>{"square", "ellipse", "heart"}));
  EXPECT_TRUE(s.colors.empty());
  ASSERT_EQ(s.factors.size(), 3000u);
  std::vector<std::set<int32_t>> seen(5);
  for (int64_t i = 0; i < ds.n; ++i) {
    for (int k = 0; k < 5; ++k) {
      ASSERT_GE(s.factors[i][k], 0);
      ASSERT_LT(s.factors[i][k], kShapeFactorSizes[k]);
      seen[k].insert(s.factors[i][k]);
    }
    EXPECT_EQ(ds.labels[i], s.factors[i][kShapeFactorShape]);
    // The image is the rendering of its factors.
    const std::vector<uint8_t> img = render(s.factors[i]);
    ASSERT_TRUE(std::equal(img.begin(), img.end(), ds.images.begin() + i * ds.image_size())) << "image " << i;
  }
  // 3000 uniform draws see every value of every factor (the rarest, 1/40, is missed with
  // probability 40 * (39/40)^3000, about 1e-31).
  for (int k = 0; k < 5; ++k) EXPECT_EQ(static_cast<int32_t>(seen[k].size()), kShapeFactorSizes[k]) << "factor " << k;
}

TEST(Shapes, FactorValues) {
  EXPECT_DOUBLE_EQ(shapes_scale(0), 0.5);
  EXPECT_DOUBLE_EQ(shapes_scale(5), 1.0);
  EXPECT_DOUBLE_EQ(shapes_rotation(0), 0.0);
  EXPECT_NEAR(shapes_rotation(39), 2 * std::numbers::pi * 39 / 40, 1e-12);
  EXPECT_DOUBLE_EQ(shapes_position(0), 0.0);
  EXPECT_DOUBLE_EQ(shapes_position(31), 1.0);
  EXPECT_LT(shapes_center_px(0, kSize), shapes_center_px(31, kSize));
  EXPECT_NEAR(shapes_center_px(0, kSize) + shapes_center_px(31, kSize), kSize, 1e-9);  // symmetric frame
}

TEST(Shapes, FullGridCountAndOrder) {
  EXPECT_EQ(shapes_grid_count(), 3 * 6 * 40 * 32 * 32);
  EXPECT_EQ(shapes_grid_count(), 737280);
  // dSprites' order: shape, scale, rotation, x, y, the last varying fastest.
  EXPECT_EQ(shapes_grid_factors(0), (ShapeFactors{0, 0, 0, 0, 0}));
  EXPECT_EQ(shapes_grid_factors(1), (ShapeFactors{0, 0, 0, 0, 1}));
  EXPECT_EQ(shapes_grid_factors(32), (ShapeFactors{0, 0, 0, 1, 0}));
  EXPECT_EQ(shapes_grid_factors(32 * 32), (ShapeFactors{0, 0, 1, 0, 0}));
  EXPECT_EQ(shapes_grid_factors(40 * 32 * 32), (ShapeFactors{0, 1, 0, 0, 0}));
  EXPECT_EQ(shapes_grid_factors(6 * 40 * 32 * 32), (ShapeFactors{1, 0, 0, 0, 0}));
  EXPECT_EQ(shapes_grid_factors(737279), (ShapeFactors{2, 5, 39, 31, 31}));
  for (int64_t i = 0; i < shapes_grid_count(); i += 997) ASSERT_EQ(shapes_grid_index(shapes_grid_factors(i)), i);
  EXPECT_THROW(shapes_grid_factors(737280), std::out_of_range);
  EXPECT_THROW(shapes_grid_index(ShapeFactors{3, 0, 0, 0, 0}), std::out_of_range);
}

TEST(Shapes, CentroidFollowsPosition) {
  // Square and ellipse are symmetric about their center, so their centroid is the center; the heart's
  // moves with it.
  for (int32_t shape = 0; shape < 3; ++shape) {
    const Moments origin = moments(render({shape, 5, 3, 0, 0}));
    for (const int32_t x : {0, 9, 20, 31}) {
      for (const int32_t y : {0, 14, 31}) {
        const Moments m = moments(render({shape, 5, 3, x, y}));
        const double dx = shapes_center_px(x, kSize) - shapes_center_px(0, kSize);
        const double dy = shapes_center_px(y, kSize) - shapes_center_px(0, kSize);
        EXPECT_NEAR(m.cx - origin.cx, dx, 0.05) << "shape " << shape << " x " << x << " y " << y;
        EXPECT_NEAR(m.cy - origin.cy, dy, 0.05) << "shape " << shape << " x " << x << " y " << y;
        EXPECT_NEAR(m.mass, origin.mass, 0.02 * origin.mass);  // moving does not change the area
        if (shape < 2) {
          EXPECT_NEAR(m.cx, shapes_center_px(x, kSize), 0.05);
          EXPECT_NEAR(m.cy, shapes_center_px(y, kSize), 0.05);
        }
      }
    }
  }
}

TEST(Shapes, AreaGrowsWithScaleSquared) {
  for (int32_t shape = 0; shape < 3; ++shape) {
    double previous = 0;
    for (int32_t scale = 0; scale < 6; ++scale) {
      const double area = moments(render({shape, scale, 0, 15, 15})).mass;
      EXPECT_GT(area, previous) << "shape " << shape << " scale " << scale;
      previous = area;
    }
    const double small = moments(render({shape, 0, 0, 15, 15})).mass;
    const double large = moments(render({shape, 5, 0, 15, 15})).mass;
    EXPECT_NEAR(large / small, 4.0, 0.2) << "shape " << shape;  // scale doubles: area x4
  }
  // The square at scale 1 is 2 * 0.7 * radius on a side, radius = 0.16 * 64 pixels. The 4 x 4
  // samples measure each side to a quarter pixel.
  const double side = 2 * 0.7 * 0.16 * kSize;
  EXPECT_NEAR(moments(render({0, 5, 0, 15, 15})).mass, side * side, 2 * side * 0.25);
}

TEST(Shapes, ShapesDifferAndFitTheFrame) {
  const std::vector<uint8_t> square = render({0, 5, 0, 15, 15});
  const std::vector<uint8_t> ellipse = render({1, 5, 0, 15, 15});
  const std::vector<uint8_t> heart = render({2, 5, 0, 15, 15});
  auto differing = [](const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
    int count = 0;
    for (size_t i = 0; i < a.size(); ++i) count += std::abs(a[i] - b[i]) > 64;
    return count;
  };
  EXPECT_GT(differing(square, heart), 40);
  EXPECT_GT(differing(square, ellipse), 40);
  EXPECT_GT(differing(ellipse, heart), 40);

  // Anti-aliased: edges have partial values; inside is full white.
  std::set<uint8_t> values(heart.begin(), heart.end());
  EXPECT_GT(values.size(), 8u);
  EXPECT_TRUE(values.count(255));

  // The largest shapes at the extreme positions, at every rotation, leave the border black.
  for (int32_t shape = 0; shape < 3; ++shape) {
    for (int32_t rot = 0; rot < 40; ++rot) {
      for (const int32_t x : {0, 31}) {
        for (const int32_t y : {0, 31}) {
          const std::vector<uint8_t> img = render({shape, 5, rot, x, y});
          for (int64_t k = 0; k < kSize; ++k) {
            ASSERT_EQ(img[k], 0);                              // top row
            ASSERT_EQ(img[(kSize - 1) * kSize + k], 0);        // bottom row
            ASSERT_EQ(img[k * kSize], 0);                      // left column
            ASSERT_EQ(img[k * kSize + kSize - 1], 0);          // right column
          }
        }
      }
    }
  }
}

// How far the heart reaches from its center (pixels at least half covered), up, down, left, right.
struct Reach {
  double up = 0, down = 0, left = 0, right = 0;
};
Reach reach(const std::vector<uint8_t>& img, double cx, double cy) {
  Reach r;
  for (int64_t y = 0; y < kSize; ++y) {
    for (int64_t x = 0; x < kSize; ++x) {
      if (img[y * kSize + x] < 128) continue;
      r.up = std::max(r.up, cy - (y + 0.5));
      r.down = std::max(r.down, (y + 0.5) - cy);
      r.left = std::max(r.left, cx - (x + 0.5));
      r.right = std::max(r.right, (x + 0.5) - cx);
    }
  }
  return r;
}

TEST(Shapes, HeartIsUprightAndTurnsCounterclockwise) {
  const double c = shapes_center_px(15, kSize);
  // Rotation 0: lobes up, tip down; the tip reaches ~2 pixels farther from the center than the lobes.
  const Reach r0 = reach(render({2, 5, 0, 15, 15}), c, c);
  EXPECT_GT(r0.down, r0.up + 1.0);
  EXPECT_NEAR(r0.left, r0.right, 1.0);  // mirror-symmetric
  // A half turn: tip up.
  const Reach r20 = reach(render({2, 5, 20, 15, 15}), c, c);
  EXPECT_GT(r20.up, r20.down + 1.0);
  // A quarter turn counterclockwise on screen carries the tip from down to right.
  const Reach r10 = reach(render({2, 5, 10, 15, 15}), c, c);
  EXPECT_GT(r10.right, r10.left + 1.0);
  EXPECT_NEAR(r10.up, r10.down, 1.0);

  // The square looks the same after a quarter turn (up to edge sampling).
  const Moments s0 = moments(render({0, 5, 0, 15, 15})), s10 = moments(render({0, 5, 10, 15, 15}));
  EXPECT_NEAR(s0.mass, s10.mass, 0.5);
  // But an eighth of a turn is a diamond: it reaches farther.
  const Reach d = reach(render({0, 5, 5, 15, 15}), c, c);
  const Reach sq = reach(render({0, 5, 0, 15, 15}), c, c);
  EXPECT_GT(d.up, sq.up + 2.0);
}

TEST(Shapes, ColoredVariantPaintsTheSameShapes) {
  const ShapesData gray = make_shapes_with_factors(opts(300, 3, 1));
  const ShapesData color = make_shapes_with_factors(opts(300, 3, 3));
  const Dataset& g = gray.dataset;
  const Dataset& c = color.dataset;
  ASSERT_EQ(c.channels, 3);
  ASSERT_EQ(c.images.size(), static_cast<size_t>(300 * 3 * kSize * kSize));
  EXPECT_EQ(color.factors, gray.factors);  // same seed: same shapes
  EXPECT_EQ(c.labels, g.labels);
  ASSERT_EQ(color.colors.size(), 300u);
  std::set<int32_t> used(color.colors.begin(), color.colors.end());
  EXPECT_EQ(static_cast<int32_t>(used.size()), kShapesPaletteSize);

  const int64_t plane = kSize * kSize;
  int64_t colored_pixels = 0;
  for (int64_t i = 0; i < 300; ++i) {
    const std::array<uint8_t, 3> rgb = shapes_palette(color.colors[i]);
    for (int64_t p = 0; p < plane; ++p) {
      const uint8_t v = g.images[i * plane + p];
      const uint8_t r = c.images[(i * 3 + 0) * plane + p], gg = c.images[(i * 3 + 1) * plane + p],
                    b = c.images[(i * 3 + 2) * plane + p];
      ASSERT_EQ(v == 0, r == 0 && gg == 0 && b == 0) << "image " << i << " pixel " << p;  // same silhouette
      if (v == 255) {  // fully covered: exactly the palette color
        ASSERT_EQ(r, rgb[0]);
        ASSERT_EQ(gg, rgb[1]);
        ASSERT_EQ(b, rgb[2]);
      }
      colored_pixels += (r != gg || gg != b);
    }
  }
  EXPECT_GT(colored_pixels, 1000);
}

TEST(Shapes, BadOptionsAreRefused) {
  ShapesOptions o = opts(10, 0);
  o.size = 8;
  EXPECT_THROW(make_shapes(o), std::invalid_argument);
  o = opts(10, 0, 2);
  EXPECT_THROW(make_shapes(o), std::invalid_argument);
  EXPECT_THROW(make_shapes(opts(0, 0)), std::invalid_argument);
}

TEST(Shapes, OtherSizes) {
  ShapesOptions o = opts(20, 1);
  o.size = 32;
  const ShapesData s = make_shapes_with_factors(o);
  EXPECT_EQ(s.dataset.height, 32);
  EXPECT_EQ(s.dataset.images.size(), static_cast<size_t>(20 * 32 * 32));
  // Same factors as at 64 (the factors do not depend on the size), same relative centroid.
  const ShapesData big = make_shapes_with_factors(opts(20, 1));
  EXPECT_EQ(s.factors, big.factors);
  const Moments m = moments(render({0, 5, 0, 31, 0}, 1, 0, 32), 32);
  EXPECT_NEAR(m.cx, shapes_center_px(31, 32), 0.05);
  EXPECT_NEAR(m.cy, shapes_center_px(0, 32), 0.05);
}

TEST(Shapes, LoadDatasetNames) {
  EXPECT_TRUE(is_shapes_name("shapes"));
  EXPECT_TRUE(is_shapes_name("shapes-color:100"));
  EXPECT_FALSE(is_shapes_name("shapes2"));
  EXPECT_FALSE(is_shapes_name("./shapes"));

  const Dataset train = load_dataset("shapes:100", Split::Train);
  EXPECT_EQ(train.name, "shapes:100");
  EXPECT_EQ(train.n, 100);
  EXPECT_EQ(train.channels, 1);
  EXPECT_EQ(train.height, 64);
  EXPECT_EQ(train.labels.size(), 100u);
  EXPECT_EQ(train.class_names.size(), 3u);
  const Dataset test = load_dataset("shapes:100", Split::Test);
  EXPECT_EQ(test.n, 10);
  EXPECT_FALSE(std::equal(test.images.begin(), test.images.end(), train.images.begin()));  // other seed

  const Dataset default_test = load_dataset("shapes-color", Split::Test);
  EXPECT_EQ(default_test.n, 2000);
  EXPECT_EQ(default_test.channels, 3);
  EXPECT_EQ(shapes_options_for("shapes", Split::Train).n, 20000);

  for (const char* bad : {"shapes:", "shapes:0", "shapes:abc", "shapes:-5", "shapes:12x", "shapes:99999999999"}) {
    EXPECT_THROW(load_dataset(bad, Split::Train), std::invalid_argument) << bad;
  }
}

}  // namespace
}  // namespace ll::data
