// test_plot.cpp: text rasterization (where pixels land, clipping, scaling), labeled sheets (their
// geometry, computed by hand from the layout documented in plot.cpp) and scatter plots (colors,
// determinism, degenerate data).
//
// Set LATENTLAB_PLOT_DIR to a folder to also get example pictures written there, to look at.
#include <cstdlib>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

#include "data/image.h"
#include "data/plot.h"

namespace ll::data {
namespace {

constexpr Color kWhite{255, 255, 255};
constexpr Color kBlack{0, 0, 0};

bool is_white(const Image& im, int64_t x, int64_t y) {
  const uint8_t* p = &im.pixels[static_cast<size_t>((y * im.width + x) * im.channels)];
  for (int64_t c = 0; c < im.channels; ++c)
    if (p[c] != 255) return false;
  return true;
}

Color pixel(const Image& im, int64_t x, int64_t y) {
  const uint8_t* p = &im.pixels[static_cast<size_t>((y * im.width + x) * 3)];
  return {p[0], p[1], p[2]};
}

bool same(Color a, Color b) { return a.r == b.r && a.g == b.g && a.b == b.b; }

// The bounding box [x0, x1) x [y0, y1) of the non-white pixels, and their count.
struct Ink {
  int64_t x0 = std::numeric_limits<int64_t>::max(), y0 = x0, x1 = -1, y1 = -1, count = 0;
};
Ink ink(const Image& im) {
  Ink k;
  for (int64_t y = 0; y < im.height; ++y) {
    for (int64_t x = 0; x < im.width; ++x) {
      if (is_white(im, x, y)) continue;
      k.x0 = std::min(k.x0, x), k.y0 = std::min(k.y0, y);
      k.x1 = std::max(k.x1, x + 1), k.y1 = std::max(k.y1, y + 1);
      ++k.count;
    }
  }
  return k;
}

std::string printable_ascii() {
  std::string s;
  for (int c = 32; c <= 126; ++c) s.push_back(static_cast<char>(c));
  return s;
}

TEST(Text, MetricsMatchTheFont) {
  // stb_easy_font: digits and most letters advance 6 font pixels; glyphs with descenders reach
  // below the 7-pixel cap height but stay within text_height.
  EXPECT_EQ(text_width(""), 0);
  EXPECT_EQ(text_width("0123456789"), 60);
  EXPECT_EQ(text_width("00", 3), 36);
  EXPECT_GE(text_height(), 8);
  EXPECT_LE(text_height(), 12);
  EXPECT_EQ(text_height(2), 2 * text_height());
}

TEST(Text, DrawsInsideItsBoxOnly) {
  for (int64_t scale : {1, 2, 3}) {
    for (const std::string& text : std::vector<std::string>{"Hello, world", "gjpqy|", "0.25 -1e3", printable_ascii()}) {
      Image im = blank_rgb(text_width(text, scale) + 40, text_height(scale) + 40, kWhite);
      draw_text(im, 17, 11, text, kBlack, scale);
      const Ink k = ink(im);
      ASSERT_GT(k.count, 0) << text;
      EXPECT_GE(k.x0, 17) << text;
      EXPECT_GE(k.y0, 11) << text;
      EXPECT_LE(k.x1, 17 + text_width(text, scale)) << text;
      EXPECT_LE(k.y1, 11 + text_height(scale)) << text;
      // The box is tight enough to be useful: the ink reaches near its far edges.
      EXPECT_GE(k.x1, 17 + text_width(text, scale) - 2 * scale) << text;
    }
  }
  // The tallest glyphs define text_height: the whole font together fills it exactly.
  Image im = blank_rgb(700, 30, kWhite);
  draw_text(im, 0, 5, printable_ascii(), kBlack);
  EXPECT_EQ(ink(im).y1, 5 + text_height());
}

TEST(Text, ColorAndGrayImages) {
  Image rgb = blank_rgb(40, 20, kWhite);
  draw_text(rgb, 2, 2, "A", {200, 10, 20});
  std::set<std::tuple<int, int, int>> colors;
  for (int64_t y = 0; y < rgb.height; ++y)
    for (int64_t x = 0; x < rgb.width; ++x) {
      const Color c = pixel(rgb, x, y);
      colors.insert({c.r, c.g, c.b});
    }
  EXPECT_EQ(colors, (std::set<std::tuple<int, int, int>>{{255, 255, 255}, {200, 10, 20}}));

  Image gray;
  gray.width = 40, gray.height = 20, gray.channels = 1;
  gray.pixels.assign(800, 255);
  draw_text(gray, 2, 2, "A", kBlack);
  EXPECT_GT(ink(gray).count, 0);
}

TEST(Text, ScaleMagnifiesEachFontPixel) {
  // Scale s draws exactly the scale-1 picture with every pixel an s x s square.
  const std::string text = "Rg7%";
  Image one = blank_rgb(text_width(text), text_height(), kWhite);
  draw_text(one, 0, 0, text, kBlack);
  Image three = blank_rgb(text_width(text, 3), text_height(3), kWhite);
  draw_text(three, 0, 0, text, kBlack, 3);
  for (int64_t y = 0; y < three.height; ++y)
    for (int64_t x = 0; x < three.width; ++x)
      ASSERT_EQ(is_white(three, x, y), is_white(one, x / 3, y / 3)) << x << "," << y;
}

TEST(Text, ClipsAtEveryEdge) {
  // Draw on a big canvas, and the same text shifted onto a small one hanging over each edge: the
  // small canvas must show exactly the overlapping window of the big one.
  const std::string text = "Clip me: Wg";
  const int64_t tw = text_width(text, 2), th = text_height(2);
  Image big = blank_rgb(tw + 200, th + 200, kWhite);
  draw_text(big, 100, 100, text, kBlack, 2);
  for (auto [ox, oy] : {std::pair<int64_t, int64_t>{-7, -5}, {-30, 3}, {15, -9}, {tw - 20, 2}, {5, th - 6},
                        {tw - 3, th - 3}}) {
    // The small canvas is the big one's window starting at (100 + ox, 100 + oy).
    Image small = blank_rgb(30, 12, kWhite);
    draw_text(small, -ox, -oy, text, kBlack, 2);
    ASSERT_EQ(small.pixels.size(), 30u * 12u * 3u);
    for (int64_t y = 0; y < small.height; ++y)
      for (int64_t x = 0; x < small.width; ++x)
        ASSERT_EQ(is_white(small, x, y), is_white(big, 100 + ox + x, 100 + oy + y)) << ox << "," << oy;
  }
  // Entirely outside: nothing drawn, nothing broken.
  Image im = blank_rgb(20, 20, kWhite);
  for (auto [x, y] : {std::pair<int64_t, int64_t>{-1000, 0}, {0, -1000}, {20, 0}, {0, 20}, {1 << 30, 1 << 30}}) {
    draw_text(im, x, y, text, kBlack, 3);
  }
  EXPECT_EQ(ink(im).count, 0);
}

TEST(Text, NonAsciiBecomesAQuestionMark) {
  Image a = blank_rgb(40, 20, kWhite), b = blank_rgb(40, 20, kWhite);
  draw_text(a, 1, 1, "x\xc3\xa9\x01", kBlack);  // x, a UTF-8 e-acute (2 bytes), a control byte
  draw_text(b, 1, 1, "x???", kBlack);
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_EQ(text_width("x\xc3\xa9\x01"), text_width("x???"));
}

TEST(Text, RejectsBadArguments) {
  Image im = blank_rgb(10, 10, kWhite);
  EXPECT_THROW(draw_text(im, 0, 0, "a", kBlack, 0), std::invalid_argument);
  Image broken;
  broken.width = 3, broken.height = 3, broken.channels = 3;
  EXPECT_THROW(draw_text(broken, 0, 0, "a", kBlack), std::invalid_argument);
  EXPECT_THROW(blank_rgb(0, 5, kWhite), std::invalid_argument);
}

TEST(Images, ToRgbAndPaste) {
  Image gray;
  gray.width = 2, gray.height = 1, gray.channels = 1;
  gray.pixels = {10, 200};
  const Image rgb = to_rgb(gray);
  EXPECT_EQ(rgb.channels, 3);
  EXPECT_EQ(rgb.pixels, (std::vector<uint8_t>{10, 10, 10, 200, 200, 200}));

  Image dst = blank_rgb(3, 2, kWhite);
  paste(dst, gray, 2, 1);  // hangs over the right edge: only its first pixel lands
  EXPECT_TRUE(same(pixel(dst, 2, 1), {10, 10, 10}));
  EXPECT_TRUE(is_white(dst, 1, 1));
  paste(dst, rgb, -1, 0);  // hangs over the left edge
  EXPECT_TRUE(same(pixel(dst, 0, 0), {200, 200, 200}));
  EXPECT_TRUE(is_white(dst, 1, 0));
}

TEST(Palette, Tab10) {
  EXPECT_TRUE(same(class_color(0), {0x1f, 0x77, 0xb4}));
  EXPECT_TRUE(same(class_color(3), {0xd6, 0x27, 0x28}));
  EXPECT_TRUE(same(class_color(9), {0x17, 0xbe, 0xcf}));
  EXPECT_TRUE(same(class_color(10), class_color(0)));
  EXPECT_TRUE(same(class_color(-1), class_color(9)));
}

// Six 1x4x5 images, image k filled with the value (k + 1) / 10.
Tensor six_images() {
  std::vector<float> v;
  for (int k = 0; k < 6; ++k) v.insert(v.end(), 20, (k + 1) / 10.0f);
  return Tensor::from_vector(v, {6, 1, 4, 5});
}

TEST(LabeledSheet, WithoutLabelsIsTheWhiteGrid) {
  const Tensor images = six_images();
  const Image sheet = labeled_sheet(images, 3, {}, {}, "", 2);
  const Image grid = to_rgb(make_grid(images, 3, 2, 255, 0.0f, 1.0f, 2));
  EXPECT_EQ(sheet.width, grid.width);
  EXPECT_EQ(sheet.height, grid.height);
  EXPECT_EQ(sheet.pixels, grid.pixels);
}

TEST(LabeledSheet, GeometryAndPlacement) {
  const Tensor images = six_images();
  const std::vector<std::string> rows = {"a", "longer row"}, cols = {"c0", "c1", "c2"};
  const std::string title = "T";
  const int64_t up = 3;
  const Image sheet = labeled_sheet(images, 3, rows, cols, title, up);
  // plot.cpp's layout: margin m = 4, padding p = 2; cells of (5 up) x (4 up).
  const int64_t m = 4, p = 2, w = 5 * up, h = 4 * up;
  const int64_t label_w = text_width("longer row") + 2 * m;
  const int64_t title_h = text_height(2) + 2 * m, col_h = text_height() + m;
  const int64_t grid_w = 3 * (w + p) + p, grid_h = 2 * (h + p) + p;
  EXPECT_EQ(sheet.channels, 3);
  EXPECT_EQ(sheet.width, label_w + grid_w);
  EXPECT_EQ(sheet.height, title_h + col_h + grid_h);
  for (int k = 0; k < 6; ++k) {
    const int64_t x0 = label_w + p + (k % 3) * (w + p), y0 = title_h + col_h + p + (k / 3) * (h + p);
    const auto v = static_cast<uint8_t>(std::lround(255 * (k + 1) / 10.0));
    for (auto [dx, dy] : {std::pair<int64_t, int64_t>{0, 0}, {w - 1, 0}, {0, h - 1}, {w - 1, h - 1}}) {
      EXPECT_TRUE(same(pixel(sheet, x0 + dx, y0 + dy), {v, v, v})) << "image " << k;
    }
    // The padding just outside each image stays white.
    EXPECT_TRUE(is_white(sheet, x0 - 1, y0)) << k;
    EXPECT_TRUE(is_white(sheet, x0 + w, y0 + h - 1)) << k;
  }
  // Text only in the bands: the title band, the column band and the label column all hold ink.
  auto band_ink = [&](int64_t x0, int64_t y0, int64_t x1, int64_t y1) {
    int64_t n = 0;
    for (int64_t y = y0; y < y1; ++y)
      for (int64_t x = x0; x < x1; ++x) n += !is_white(sheet, x, y);
    return n;
  };
  EXPECT_GT(band_ink(0, 0, sheet.width, title_h), 0);
  EXPECT_GT(band_ink(label_w, title_h, sheet.width, title_h + col_h), 0);
  EXPECT_GT(band_ink(0, title_h + col_h, label_w, sheet.height), 0);
  EXPECT_EQ(band_ink(0, title_h, label_w, title_h + col_h), 0);  // the empty corner
}

TEST(LabeledSheet, WideTitleWidensTheSheet) {
  const std::string title = "a title much wider than two tiny images";
  const Image sheet =
      labeled_sheet(Tensor::full({2, 3, 2, 2}, 0.5f), 2, {}, {}, title, 1);
  EXPECT_EQ(sheet.width, text_width(title, 2) + 2 * 4);
  EXPECT_EQ(sheet.height, text_height(2) + 2 * 4 + (2 + 2 + 2));
  // The grid, 2 (2 + 2) + 2 = 10 pixels wide, is centered under the title: images at gx + 2 and
  // gx + 6, 2 pixels each, white padding around them.
  const int64_t gx = (sheet.width - 10) / 2, gy = text_height(2) + 2 * 4;
  for (int64_t x : {2, 3, 6, 7}) EXPECT_TRUE(same(pixel(sheet, gx + x, gy + 3), {128, 128, 128})) << x;
  for (int64_t x : {1, 4, 5, 8}) EXPECT_TRUE(is_white(sheet, gx + x, gy + 3)) << x;
}

TEST(LabeledSheet, RejectsMismatchedLabels) {
  const Tensor images = six_images();
  EXPECT_THROW(labeled_sheet(images, 3, {"one"}, {}, ""), std::invalid_argument);
  EXPECT_THROW(labeled_sheet(images, 3, {}, {"a", "b"}, ""), std::invalid_argument);
  EXPECT_THROW(labeled_sheet(images, 0, {}, {}, ""), std::invalid_argument);
  EXPECT_THROW(labeled_sheet(Tensor::zeros({2, 2, 4, 4}), 1, {}, {}, ""), std::invalid_argument);  // C = 2
}

int64_t count_color(const Image& im, Color c) {
  int64_t n = 0;
  for (int64_t y = 0; y < im.height; ++y)
    for (int64_t x = 0; x < im.width; ++x) n += same(pixel(im, x, y), c);
  return n;
}

TEST(ScatterPlot, DrawsEveryClassDeterministically) {
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x, y;
  std::vector<int32_t> cls;
  for (int i = 0; i < 300; ++i) {
    cls.push_back(i % 3);
    x.push_back(3.0f * static_cast<float>(i % 3) + normal(gen));
    y.push_back(-2.0f * static_cast<float>(i % 3) + 0.5f * normal(gen));
  }
  const Image a = scatter_plot(x, y, cls, {"zero", "one", "two"}, "three blobs", 400);
  const Image b = scatter_plot(x, y, cls, {"zero", "one", "two"}, "three blobs", 400);
  EXPECT_EQ(a.width, 400);
  EXPECT_EQ(a.height, 400);
  EXPECT_EQ(a.channels, 3);
  EXPECT_EQ(a.pixels, b.pixels);
  for (int k = 0; k < 3; ++k) EXPECT_GT(count_color(a, class_color(k)), 100) << "class " << k;
  EXPECT_EQ(count_color(a, class_color(3)), 0);  // absent classes are not in the legend
}

TEST(ScatterPlot, OnePointIsADiscOfItsColor) {
  const Image im = scatter_plot({0.5f}, {-3.0f}, {4}, {}, "", 200);
  // One class and no names: no legend, so the class color is the disc alone: 5 x 5 minus corners.
  EXPECT_EQ(count_color(im, class_color(4)), 21);
}

TEST(ScatterPlot, DegenerateDataDoNotBreakIt) {
  // Identical points, all x equal, all y equal, zeros, huge and tiny values, non-finite values, none.
  const std::vector<std::vector<float>> xs = {{1, 1, 1}, {2, 2, 2}, {0, 1, 2}, {0, 0, 0}, {1e20f, 1e20f, 2e20f},
                                              {1e-20f, 3e-20f, 2e-20f}};
  const std::vector<std::vector<float>> ys = {{1, 1, 1}, {0, 5, 9}, {7, 7, 7}, {0, 0, 0}, {-1, 0, 1},
                                              {-5e-30f, 0, 1e-30f}};
  for (size_t t = 0; t < xs.size(); ++t) {
    const Image im = scatter_plot(xs[t], ys[t], {0, 1, 1}, {"a", "b"}, "case " + std::to_string(t), 240);
    EXPECT_GT(count_color(im, class_color(0)), 0) << t;
    EXPECT_GT(count_color(im, class_color(1)), 0) << t;
  }
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  const Image mixed = scatter_plot({1, nan, inf, 2}, {1, 2, 3, -inf}, {}, {}, "", 200);
  EXPECT_EQ(count_color(mixed, class_color(0)), 21);  // only the one finite point
  const Image empty = scatter_plot({}, {}, {}, {}, "nothing", 200);
  EXPECT_EQ(count_color(empty, class_color(0)), 0);
}

TEST(ScatterPlot, RejectsMismatchedInputs) {
  EXPECT_THROW(scatter_plot({1, 2}, {1}, {}, {}, ""), std::invalid_argument);
  EXPECT_THROW(scatter_plot({1, 2}, {1, 2}, {0}, {}, ""), std::invalid_argument);
  EXPECT_THROW(scatter_plot({1}, {1}, {}, {}, "", 20), std::invalid_argument);
}

// Pictures to look at: LATENTLAB_PLOT_DIR=/tmp/pics ./test_plot --gtest_filter=*Pictures*
TEST(Pictures, WriteExamples) {
  const char* dir = std::getenv("LATENTLAB_PLOT_DIR");
  if (!dir) GTEST_SKIP() << "set LATENTLAB_PLOT_DIR to write example pictures";
  const std::string out = dir;
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> uniform(0.0f, 1.0f);
  std::normal_distribution<float> normal(0.0f, 1.0f);

  std::vector<float> v(12 * 28 * 28);
  for (size_t i = 0; i < v.size(); ++i) {
    const size_t k = i / 784, yy = (i % 784) / 28, xx = i % 28;
    v[i] = k % 2 ? uniform(gen) : 0.5f + 0.5f * std::sin(0.3f * xx + 0.2f * yy + static_cast<float>(k));
  }
  save_png(out + "/sheet.png", labeled_sheet(Tensor::from_vector(v, {12, 1, 28, 28}), 4,
                                             {"original", "AE", "VAE"}, {"t=0", "t=1/3", "t=2/3", "t=1"},
                                             "Interpolation (lerp)", 2));
  std::vector<float> c(6 * 3 * 16 * 16);
  for (float& e : c) e = uniform(gen);
  save_png(out + "/sheet_rgb.png", labeled_sheet(Tensor::from_vector(c, {6, 3, 16, 16}), 3, {}, {},
                                                 "A long title for a tiny sheet", 3));

  std::vector<float> x, y;
  std::vector<int32_t> cls;
  const float cx[3] = {-2.0f, 1.5f, 0.3f}, cy[3] = {0.5f, 1.0f, -2.2f};
  for (int i = 0; i < 900; ++i) {
    cls.push_back(i % 3);
    x.push_back(cx[i % 3] + 0.6f * normal(gen));
    y.push_back(cy[i % 3] + 0.4f * normal(gen));
  }
  save_png(out + "/scatter.png",
           scatter_plot(x, y, cls, {"T-shirt/top", "Trouser", "Pullover"}, "AE latent space (test set)"));
  x.clear(), y.clear(), cls.clear();
  for (int i = 0; i < 2000; ++i) {
    cls.push_back(i % 10);
    x.push_back(0.001f * (static_cast<float>(i % 10) + normal(gen)));
    y.push_back(1000.0f + 50.0f * normal(gen));
  }
  save_png(out + "/scatter10.png", scatter_plot(x, y, cls, {}, "ten classes, odd scales", 480));
  save_png(out + "/scatter_flat.png", scatter_plot({1, 1, 1}, {0, 0.5f, 2}, {0, 1, 2}, {}, "all x equal", 320));

  Image t = blank_rgb(620, 90, kWhite);
  const std::string all = printable_ascii();
  draw_text(t, 2, 2, all.substr(0, 48), kBlack);
  draw_text(t, 2, 20, all.substr(48), kBlack);
  draw_text(t, 2, 40, "Hgjpqy 0.25 -1.5e3", {200, 0, 0}, 3);
  save_png(out + "/text.png", t);
}

}  // namespace
}  // namespace ll::data
