// plot.h: the pictures of the latent lab: text on images, labeled sheets of images, scatter plots.
// Text is drawn with stb_easy_font's quads (Debian's libstb-dev), rasterized here; no font files.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"
#include "engine/tensor.h"

namespace ll::data {

struct Color {
  uint8_t r = 0, g = 0, b = 0;
};

// The 10 colors of matplotlib's "tab10" palette, for classes 0..9 (then repeating).
Color class_color(int64_t k);

// An RGB copy of a gray or RGB image.
Image to_rgb(const Image& image);
// A blank RGB image.
Image blank_rgb(int64_t width, int64_t height, Color background);

// Draws `text` with its top-left corner at (x, y), each font pixel a scale x scale square; clips at
// the image's edges. The font is about 6 pixels wide and 8 high per character at scale 1. Bytes
// outside printable ASCII are drawn as '?'. Gray images get the color's luma.
void draw_text(Image& image, int64_t x, int64_t y, const std::string& text, Color color, int64_t scale = 1);
// Every pixel draw_text sets lies in [x, x + text_width) x [y, y + text_height) (one line of text).
int64_t text_width(const std::string& text, int64_t scale = 1);
int64_t text_height(int64_t scale = 1);

// Pastes `src` into `dst` (RGB) with its top-left corner at (x, y) (gray sources become gray RGB);
// clips at dst's edges.
void paste(Image& dst, const Image& src, int64_t x, int64_t y);

// A sheet of images in rows: images (rows * cols, C, H, W) in [0, 1], row r holding images
// r*cols .. r*cols + cols - 1, each upscaled; a label left of each row (row_labels: empty or one per
// row), a label above each column (col_labels: empty or one per column), and a title on top (may be
// empty). White background, black text; RGB output. The layout, pixel by pixel, is documented at
// the definition (plot.cpp); the last row may be incomplete.
Image labeled_sheet(const Tensor& images, int64_t cols, const std::vector<std::string>& row_labels,
                    const std::vector<std::string>& col_labels, const std::string& title, int64_t upscale = 2);

// `sheet` under a title (twice the text size, centered) and lines of explanation (gray), on white;
// the sheet is centered when the text is wider than it.
Image with_header(const Image& sheet, const std::string& title, const std::vector<std::string>& lines);

// A scatter plot of points (x[i], y[i]) colored by classes[i] (class_color), with axes, tick
// labels, a legend and a title; `size` pixels square (>= 160). classes may be empty (all class 0).
// class_names[k] names class k in the legend (the number when missing); the legend lists the
// classes present, and is left out when there is a single unnamed class. About 5 ticks per axis at
// 1, 2, 5 x 10^k; points are discs of radius 2 drawn in index order; non-finite points are skipped;
// equal values (a zero range) are widened around the value.
Image scatter_plot(const std::vector<float>& x, const std::vector<float>& y, const std::vector<int32_t>& classes,
                   const std::vector<std::string>& class_names, const std::string& title, int64_t size = 640);

}  // namespace ll::data
