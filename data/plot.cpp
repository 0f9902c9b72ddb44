// plot.cpp: text, labeled sheets and scatter plots (plot.h).
//
// Text comes from stb_easy_font (Sean Barrett, public domain; Debian's libstb-dev): it turns a
// string into axis-aligned quads, one per horizontal or vertical stroke of a small segment font, in
// font pixels with y growing downwards. We rasterize those quads ourselves: each is a rectangle of
// whole font pixels, so filling it as a (scale x scale)-magnified rectangle is exact, needs no
// anti-aliasing and is the same on every machine.
#include "data/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

// The font's functions are `static` (internal linkage); we do not call all of them, and its code is
// not ours to keep warning-free.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

namespace ll::data {
namespace {

// One vertex of stb_easy_font's output: x, y, z floats and an RGBA color, 16 bytes.
struct FontVertex {
  float x, y, z;
  uint8_t rgba[4];
};
static_assert(sizeof(FontVertex) == 16, "stb_easy_font writes 16-byte vertices");

// stb_easy_font indexes its glyph table with (c - 32) and has glyphs for ' '..'~' only: anything
// else (control bytes, UTF-8) would read outside the table, so it becomes '?'. Newlines are kept
// (the font moves down 12 font pixels per line).
std::vector<char> font_text(const std::string& text) {
  std::vector<char> out;
  out.reserve(text.size() + 1);
  for (char ch : text) {
    const auto u = static_cast<unsigned char>(ch);
    if (ch == '\n') {
      out.push_back('\n');
    } else if (ch == '\t') {
      out.push_back(' ');
    } else {
      out.push_back(u >= 32 && u <= 126 ? ch : '?');
    }
  }
  out.push_back('\0');
  return out;
}

// A filled rectangle [x0, x1) x [y0, y1) in image pixels.
struct Rect {
  int64_t x0, y0, x1, y1;
};

// The strokes of `text` at the origin, in font pixels.
std::vector<Rect> text_quads(const std::string& text) {
  std::vector<char> chars = font_text(text);
  // No glyph has more than a few dozen strokes (4 vertices, 64 bytes each); 2 KiB a character is a
  // wide margin, and stb truncates rather than overflows if it were ever short.
  std::vector<FontVertex> buffer(chars.size() * 32 + 16);
  const int bytes = static_cast<int>(std::min<size_t>(buffer.size() * sizeof(FontVertex), 1u << 30));
  const int quads = stb_easy_font_print(0.0f, 0.0f, chars.data(), nullptr, buffer.data(), bytes);
  std::vector<Rect> rects;
  rects.reserve(static_cast<size_t>(quads));
  for (int q = 0; q < quads; ++q) {
    const FontVertex* v = &buffer[static_cast<size_t>(q) * 4];
    float x0 = v[0].x, x1 = v[0].x, y0 = v[0].y, y1 = v[0].y;
    for (int j = 1; j < 4; ++j) {
      x0 = std::min(x0, v[j].x), x1 = std::max(x1, v[j].x);
      y0 = std::min(y0, v[j].y), y1 = std::max(y1, v[j].y);
    }
    // With zero letter spacing every corner is a whole font pixel; lround guards against -0.0 and
    // representation noise.
    rects.push_back({std::lround(x0), std::lround(y0), std::lround(x1), std::lround(y1)});
  }
  return rects;
}

// The tallest glyph's extent below the top of the line, over all printable characters (descenders
// included): the height text_height reports, measured from the font so the two cannot disagree.
int64_t glyph_height() {
  static const int64_t height = [] {
    std::string all;
    for (int c = 32; c <= 126; ++c) all.push_back(static_cast<char>(c));
    int64_t h = 0;
    for (const Rect& r : text_quads(all)) h = std::max(h, r.y1);
    return h;
  }();
  return height;
}

uint8_t luma(Color c) {
  // ITU-R BT.601 weights, as PIL's convert("L").
  return static_cast<uint8_t>(std::lround(0.299 * c.r + 0.587 * c.g + 0.114 * c.b));
}

void check_image(const Image& image, const char* op) {
  if ((image.channels != 1 && image.channels != 3) ||
      static_cast<int64_t>(image.pixels.size()) != image.width * image.height * image.channels) {
    throw std::invalid_argument(std::string(op) + ": need a gray or RGB image whose pixels match its size, got " +
                                std::to_string(image.width) + "x" + std::to_string(image.height) + "x" +
                                std::to_string(image.channels) + " with " + std::to_string(image.pixels.size()) +
                                " bytes");
  }
}

// Fills [x0, x1) x [y0, y1), clipped to the image.
void fill_rect(Image& image, int64_t x0, int64_t y0, int64_t x1, int64_t y1, Color color) {
  x0 = std::max<int64_t>(x0, 0), y0 = std::max<int64_t>(y0, 0);
  x1 = std::min(x1, image.width), y1 = std::min(y1, image.height);
  const int64_t c = image.channels;
  const uint8_t gray = luma(color);
  for (int64_t y = y0; y < y1; ++y) {
    uint8_t* row = image.pixels.data() + (y * image.width) * c;
    for (int64_t x = x0; x < x1; ++x) {
      if (c == 3) {
        row[x * 3 + 0] = color.r, row[x * 3 + 1] = color.g, row[x * 3 + 2] = color.b;
      } else {
        row[x] = gray;
      }
    }
  }
}

// The outline of [x0, x1) x [y0, y1), 1 pixel wide, inside the rectangle.
void draw_box(Image& image, int64_t x0, int64_t y0, int64_t x1, int64_t y1, Color color) {
  fill_rect(image, x0, y0, x1, y0 + 1, color);
  fill_rect(image, x0, y1 - 1, x1, y1, color);
  fill_rect(image, x0, y0, x0 + 1, y1, color);
  fill_rect(image, x1 - 1, y0, x1, y1, color);
}

// A filled disc: the pixels whose centers lie within radius r + 1/2 of (cx, cy), i.e. dx^2 + dy^2 <=
// r^2 + r (the integer test of (r + 1/2)^2, which rounds the 5 x 5 square of r = 2 at its corners).
void draw_disc(Image& image, int64_t cx, int64_t cy, int64_t r, Color color) {
  for (int64_t dy = -r; dy <= r; ++dy) {
    for (int64_t dx = -r; dx <= r; ++dx) {
      if (dx * dx + dy * dy <= r * r + r) fill_rect(image, cx + dx, cy + dy, cx + dx + 1, cy + dy + 1, color);
    }
  }
}

constexpr Color kWhite{255, 255, 255};
constexpr Color kBlack{0, 0, 0};
constexpr Color kGray{110, 110, 110};

// ---- nice axis ticks ----

// Axis ticks at "nice" numbers, 1, 2 or 5 times a power of ten (Heckbert, "Nice numbers for graph
// labels", Graphics Gems, 1990). The axis spans the data range widened by 4% on each side (so
// points do not sit on the box); the step is the nice number that puts closest to 5 ticks inside. A degenerate range (all
// values equal) is widened around the value first, so nothing divides by zero.
struct Axis {
  double lo, hi, step;
  std::vector<double> ticks;
};
double nice_step_above(double x) {  // the next nice number strictly above x (x itself nice)
  const double p = std::pow(10.0, std::floor(std::log10(x) + 1e-9));
  const double m = x / p;
  return m < 1.5 ? 2 * p : m < 3.5 ? 5 * p : 10 * p;
}
Axis nice_axis(double vmin, double vmax) {
  if (!(vmax > vmin)) {
    const double half = vmin == 0 ? 1.0 : std::abs(vmin) * 0.1;
    vmin -= half, vmax += half;
  }
  // Widened: the data's extreme points end 4% inside the box.
  const double pad = 0.04 * (vmax - vmin);
  Axis a{vmin - pad, vmax + pad, 0.0, {}};
  // Walk the nice steps from one at or below range / 10 (>= 10 ticks) upwards, and keep the one
  // whose tick count is closest to 5 (ties: more ticks). The counts roughly halve or shrink by 2.5
  // per step, so the result has 3 to 7 ticks, mostly 4 to 6.
  double step = std::pow(10.0, std::floor(std::log10((a.hi - a.lo) / 10)));
  double best_step = 0, best_first = 0, best_last = -1;
  for (int guard = 0; guard < 8; ++guard, step = nice_step_above(step)) {
    const double first = std::ceil(a.lo / step), last = std::floor(a.hi / step);
    const double count = last - first + 1, best_count = best_last - best_first + 1;
    if (count > 7) continue;
    if (best_step == 0 || std::abs(count - 5) < std::abs(best_count - 5)) {
      best_step = step, best_first = first, best_last = last;
    }
    if (count < 3) break;
  }
  if (best_step > 0) {
    a.step = best_step;
    for (double k = best_first; k <= best_last; k += 1) a.ticks.push_back(k * best_step);
    return a;
  }
  a.step = a.hi - a.lo;  // not reached for finite input: just label the two ends
  a.ticks = {a.lo, a.hi};
  return a;
}

// A tick label: as many decimals as the step needs (0.25 -> 2; 5 -> 0); %g for extreme magnitudes.
std::string tick_label(double v, double step) {
  char buf[64];
  if (std::abs(v) < step * 1e-9) v = 0;  // no "-0" or "1e-17" at zero
  const double mag = std::max(std::abs(v), step);
  if (mag >= 1e6 || step < 1e-4) {
    std::snprintf(buf, sizeof buf, "%.3g", v);
  } else {
    const int decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  return buf;
}

}  // namespace

Color class_color(int64_t k) {
  // matplotlib's tab10 (the Tableau 10 palette).
  static constexpr Color tab10[10] = {{0x1f, 0x77, 0xb4}, {0xff, 0x7f, 0x0e}, {0x2c, 0xa0, 0x2c}, {0xd6, 0x27, 0x28},
                                      {0x94, 0x67, 0xbd}, {0x8c, 0x56, 0x4b}, {0xe3, 0x77, 0xc2}, {0x7f, 0x7f, 0x7f},
                                      {0xbc, 0xbd, 0x22}, {0x17, 0xbe, 0xcf}};
  return tab10[((k % 10) + 10) % 10];
}

Image to_rgb(const Image& image) {
  check_image(image, "to_rgb");
  if (image.channels == 3) return image;
  Image out;
  out.width = image.width, out.height = image.height, out.channels = 3;
  out.pixels.resize(image.pixels.size() * 3);
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    out.pixels[3 * i] = out.pixels[3 * i + 1] = out.pixels[3 * i + 2] = image.pixels[i];
  }
  return out;
}

Image blank_rgb(int64_t width, int64_t height, Color background) {
  if (width <= 0 || height <= 0) {
    throw std::invalid_argument("blank_rgb: need a positive size, got " + std::to_string(width) + "x" +
                                std::to_string(height));
  }
  Image out;
  out.width = width, out.height = height, out.channels = 3;
  out.pixels.resize(static_cast<size_t>(width * height * 3));
  for (size_t i = 0; i < out.pixels.size(); i += 3) {
    out.pixels[i] = background.r, out.pixels[i + 1] = background.g, out.pixels[i + 2] = background.b;
  }
  return out;
}

void draw_text(Image& image, int64_t x, int64_t y, const std::string& text, Color color, int64_t scale) {
  check_image(image, "draw_text");
  if (scale < 1) throw std::invalid_argument("draw_text: scale must be >= 1, got " + std::to_string(scale));
  for (const Rect& r : text_quads(text)) {
    fill_rect(image, x + r.x0 * scale, y + r.y0 * scale, x + r.x1 * scale, y + r.y1 * scale, color);
  }
}

int64_t text_width(const std::string& text, int64_t scale) {
  // The font's own advance sum (its widest line), which includes one blank column after the last glyph.
  std::vector<char> chars = font_text(text);
  return static_cast<int64_t>(stb_easy_font_width(chars.data())) * scale;
}

int64_t text_height(int64_t scale) { return glyph_height() * scale; }

void paste(Image& dst, const Image& src, int64_t x, int64_t y) {
  check_image(dst, "paste");
  check_image(src, "paste");
  if (dst.channels != 3) throw std::invalid_argument("paste: the destination must be RGB");
  const int64_t y0 = std::max<int64_t>(0, -y), y1 = std::min(src.height, dst.height - y);
  const int64_t x0 = std::max<int64_t>(0, -x), x1 = std::min(src.width, dst.width - x);
  for (int64_t sy = y0; sy < y1; ++sy) {
    for (int64_t sx = x0; sx < x1; ++sx) {
      uint8_t* d = dst.pixels.data() + ((y + sy) * dst.width + (x + sx)) * 3;
      const uint8_t* s = src.pixels.data() + (sy * src.width + sx) * src.channels;
      if (src.channels == 3) {
        d[0] = s[0], d[1] = s[1], d[2] = s[2];
      } else {
        d[0] = d[1] = d[2] = s[0];
      }
    }
  }
}

// Layout (all lengths in pixels; m = 4, the margin; p = 2, make_grid's padding):
//   title band    height th = 2m + text_height(2) when there is a title, else 0
//   column band   height ch = text_height(1) + m when there are column labels, else 0
//   label column  width  lw = widest row label + 2m when there are row labels, else 0
//   the grid      make_grid(images, cols, p, white, upscale) at (gx, th + ch), gx = lw + e / 2 where
//                 e = width - lw - grid width is the excess a wide title makes (else 0):
//                 image k at (gx + p + (k % cols)(w + p), th + ch + p + (k / cols)(h + p)),
//                 w and h being the upscaled image size
//   width = max(lw + grid width, title width (scale 2) + 2m), height = th + ch + grid height.
// Row labels are right-aligned m pixels left of the grid and centered on their row; column labels
// are centered on their column, and the title on the sheet.
Image labeled_sheet(const Tensor& images, int64_t cols, const std::vector<std::string>& row_labels,
                    const std::vector<std::string>& col_labels, const std::string& title, int64_t upscale) {
  if (!images.defined() || images.dim() != 4 || images.size(0) < 1) {
    throw std::invalid_argument("labeled_sheet: expected images (N >= 1, C, H, W), got " +
                                (images.defined() ? shape_str(images.shape()) : std::string("an undefined tensor")));
  }
  if (cols < 1) throw std::invalid_argument("labeled_sheet: cols must be >= 1, got " + std::to_string(cols));
  if (upscale < 1) throw std::invalid_argument("labeled_sheet: upscale must be >= 1, got " + std::to_string(upscale));
  const int64_t n = images.size(0);
  const int64_t ncols = std::min(cols, n), rows = (n + cols - 1) / cols;
  if (!row_labels.empty() && static_cast<int64_t>(row_labels.size()) != rows) {
    throw std::invalid_argument("labeled_sheet: " + std::to_string(row_labels.size()) + " row labels for " +
                                std::to_string(rows) + " rows");
  }
  if (!col_labels.empty() && static_cast<int64_t>(col_labels.size()) != ncols) {
    throw std::invalid_argument("labeled_sheet: " + std::to_string(col_labels.size()) + " column labels for " +
                                std::to_string(ncols) + " columns");
  }
  const Image grid = to_rgb(make_grid(images, cols, /*padding=*/2, /*pad_value=*/255, 0.0f, 1.0f, upscale));
  constexpr int64_t m = 4, p = 2;
  const int64_t w = images.size(3) * upscale, h = images.size(2) * upscale;

  int64_t label_w = 0;
  for (const auto& s : row_labels) label_w = std::max(label_w, text_width(s));
  if (!row_labels.empty()) label_w += 2 * m;
  const int64_t title_h = title.empty() ? 0 : text_height(2) + 2 * m;
  const int64_t col_h = col_labels.empty() ? 0 : text_height(1) + m;
  const int64_t width = std::max(label_w + grid.width, title.empty() ? 0 : text_width(title, 2) + 2 * m);
  const int64_t height = title_h + col_h + grid.height;

  Image sheet = blank_rgb(width, height, kWhite);
  // A title wider than the rest widens the sheet; labels and grid are then centered under it.
  const int64_t gx = label_w + (width - label_w - grid.width) / 2, gy = title_h + col_h;
  paste(sheet, grid, gx, gy);
  if (!title.empty()) draw_text(sheet, (width - text_width(title, 2)) / 2, m, title, kBlack, 2);
  for (int64_t c = 0; c < static_cast<int64_t>(col_labels.size()); ++c) {
    const int64_t center = gx + p + c * (w + p) + w / 2;
    draw_text(sheet, center - text_width(col_labels[c]) / 2, title_h, col_labels[c], kBlack);
  }
  for (int64_t r = 0; r < static_cast<int64_t>(row_labels.size()); ++r) {
    const int64_t center = gy + p + r * (h + p) + h / 2;
    draw_text(sheet, gx - m - text_width(row_labels[r]), center - text_height() / 2, row_labels[r], kBlack);
  }
  return sheet;
}

// Layout: a title band on top, the legend on the right (only when some class is named or there is
// more than one class), tick labels left of and below the plot box. Data map linearly onto the box
// (the axes' 4% widening keeps discs off its edges; any overhang is clipped to its interior).
Image scatter_plot(const std::vector<float>& x, const std::vector<float>& y, const std::vector<int32_t>& classes,
                   const std::vector<std::string>& class_names, const std::string& title, int64_t size) {
  if (x.size() != y.size() || (!classes.empty() && classes.size() != x.size())) {
    throw std::invalid_argument("scatter_plot: " + std::to_string(x.size()) + " x values, " +
                                std::to_string(y.size()) + " y values and " + std::to_string(classes.size()) +
                                " classes (need as many of each, or no classes)");
  }
  if (size < 160) throw std::invalid_argument("scatter_plot: size must be >= 160 pixels, got " + std::to_string(size));
  constexpr int64_t m = 8, radius = 2, tick_len = 4;
  auto class_of = [&](size_t i) -> int64_t { return classes.empty() ? 0 : classes[i]; };

  // Data ranges over the finite points (non-finite ones are not drawn).
  double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
  std::set<int64_t> present;
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) continue;
    xmin = std::min<double>(xmin, x[i]), xmax = std::max<double>(xmax, x[i]);
    ymin = std::min<double>(ymin, y[i]), ymax = std::max<double>(ymax, y[i]);
    present.insert(class_of(i));
  }
  if (present.empty()) xmin = ymin = 0, xmax = ymax = 1;
  const Axis ax = nice_axis(xmin, xmax), ay = nice_axis(ymin, ymax);

  auto name_of = [&](int64_t k) {
    return k >= 0 && k < static_cast<int64_t>(class_names.size()) ? class_names[static_cast<size_t>(k)]
                                                                  : std::to_string(k);
  };
  const bool legend = !class_names.empty() || present.size() > 1;
  const int64_t line_h = text_height() + 6, swatch = 8;
  int64_t legend_w = 0;
  if (legend) {
    for (int64_t k : present) legend_w = std::max(legend_w, text_width(name_of(k)));
    legend_w += swatch + 3 * 6;
  }

  int64_t ylabel_w = 0;
  for (double t : ay.ticks) ylabel_w = std::max(ylabel_w, text_width(tick_label(t, ay.step)));
  const int64_t title_h = title.empty() ? m : text_height(2) + 2 * m;
  const int64_t box_x0 = m + ylabel_w + tick_len + 3, box_y0 = title_h;
  const int64_t box_x1 = size - m - (legend ? legend_w + m : 0);
  const int64_t box_y1 = size - m - text_height() - tick_len - 3;
  if (box_x1 - box_x0 < 32 || box_y1 - box_y0 < 32) {
    throw std::invalid_argument("scatter_plot: " + std::to_string(size) +
                                " pixels leave no room for the plot beside the labels and legend");
  }

  // Pixel position of a value: lo maps to the box's left (bottom) edge, hi to its right (top) edge.
  auto px = [&](double v) {
    return box_x0 + static_cast<int64_t>(std::lround((v - ax.lo) / (ax.hi - ax.lo) *
                                                     static_cast<double>(box_x1 - 1 - box_x0)));
  };
  auto py = [&](double v) {
    return box_y1 - 1 - static_cast<int64_t>(std::lround((v - ay.lo) / (ay.hi - ay.lo) *
                                                         static_cast<double>(box_y1 - 1 - box_y0)));
  };

  Image img = blank_rgb(size, size, kWhite);
  if (!title.empty()) draw_text(img, (size - text_width(title, 2)) / 2, m, title, kBlack, 2);
  for (double t : ax.ticks) {
    const int64_t tx = px(t);
    const std::string label = tick_label(t, ax.step);
    fill_rect(img, tx, box_y1, tx + 1, box_y1 + tick_len, kBlack);
    draw_text(img, tx - text_width(label) / 2, box_y1 + tick_len + 3, label, kBlack);
  }
  for (double t : ay.ticks) {
    const int64_t ty = py(t);
    const std::string label = tick_label(t, ay.step);
    fill_rect(img, box_x0 - tick_len, ty, box_x0, ty + 1, kBlack);
    draw_text(img, box_x0 - tick_len - 3 - text_width(label), ty - text_height() / 2, label, kBlack);
  }
  // Points in index order: deterministic, and with data sets stored interleaved (MNIST) no class is
  // systematically buried under another. Discs are clipped to the box's interior.
  Image area = blank_rgb(box_x1 - box_x0 - 2, box_y1 - box_y0 - 2, kWhite);
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) continue;
    draw_disc(area, px(x[i]) - box_x0 - 1, py(y[i]) - box_y0 - 1, radius, class_color(class_of(i)));
  }
  paste(img, area, box_x0 + 1, box_y0 + 1);
  draw_box(img, box_x0, box_y0, box_x1, box_y1, kBlack);

  if (legend) {
    const int64_t lx0 = size - m - legend_w, ly0 = box_y0;
    const int64_t lh = static_cast<int64_t>(present.size()) * line_h + 6;
    draw_box(img, lx0, ly0, size - m, ly0 + lh, kGray);
    int64_t row = 0;
    for (int64_t k : present) {
      const int64_t cy = ly0 + 6 + row * line_h;
      fill_rect(img, lx0 + 6, cy, lx0 + 6 + swatch, cy + swatch, class_color(k));
      draw_text(img, lx0 + 6 + swatch + 6, cy + (swatch - text_height()) / 2, name_of(k), kBlack);
      ++row;
    }
  }
  return img;
}

// The sheet under a title (twice the text size, centered) and plain lines of explanation, on white;
// the sheet is centered when the text is wider (labeled_sheet's own title would leave it flush left).
Image with_header(const Image& sheet, const std::string& title, const std::vector<std::string>& lines) {
  constexpr int64_t m = 6;
  const int64_t line_h = text_height() + 4;
  int64_t width = std::max(sheet.width, text_width(title, 2) + 2 * m);
  for (const auto& l : lines) width = std::max(width, text_width(l) + 2 * m);
  const int64_t head_h = m + text_height(2) + m + line_h * static_cast<int64_t>(lines.size());
  Image out = blank_rgb(width, head_h + sheet.height, {255, 255, 255});
  draw_text(out, (width - text_width(title, 2)) / 2, m, title, {0, 0, 0}, 2);
  int64_t y = m + text_height(2) + m;
  for (const auto& l : lines) {
    draw_text(out, (width - text_width(l)) / 2, y, l, {70, 70, 70});
    y += line_h;
  }
  paste(out, sheet, (width - sheet.width) / 2, head_h);
  return out;
}

}  // namespace ll::data
