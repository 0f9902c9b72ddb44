// cli_text.h: numbers, shapes and picture sizes as the subcommands print and draw them.
#pragma once
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace ll::app {

// x rounded to `digits` decimals (for JSON lines that stay readable).
inline double round_to(double x, int digits) {
  const double p = std::pow(10.0, digits);
  return std::round(x * p) / p;
}

// x in printf's `format` for one double ("%.3g", "%+.2f", ...).
inline std::string format_number(const char* format, double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, x);
  return buf;
}

// x with `decimals` digits after the point.
inline std::string fixed(double x, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, x);
  return buf;
}

// "1x28x28".
inline std::string shape_str(int64_t c, int64_t h, int64_t w) {
  return std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
}

// A non-empty string of decimal digits (a bare test index such as "17").
inline bool is_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// The pixel repeat of a sheet's cells: 28x28 images at 3x, 12x12 at 6x, 64x64 and larger at 1x,
// cells of at least ~64 pixels, so a sheet is readable without zooming and its labels fit.
inline int64_t auto_upscale(int64_t height) { return std::max<int64_t>(1, (64 + height - 1) / height); }

// "LO:HI" as two finite numbers (a flag's range), or std::nullopt for any other text; the caller
// checks what its flag needs of them and names the flag in its error.
inline std::optional<std::pair<double, double>> parse_number_pair(const std::string& text) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos) return std::nullopt;
  double lo = 0, hi = 0;
  size_t u1 = 0, u2 = 0;
  try {
    lo = std::stod(text.substr(0, colon), &u1);
    hi = std::stod(text.substr(colon + 1), &u2);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (u1 != colon || u2 != text.size() - colon - 1 || !std::isfinite(lo) || !std::isfinite(hi)) return std::nullopt;
  return std::make_pair(lo, hi);
}

}  // namespace ll::app
