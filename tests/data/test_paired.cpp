// test_paired.cpp: the paired data of pix2pix (data/paired.h): Sobel edges of known images,
// inpainting masks that depend on the image's index only, and the errors for bad arguments.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "data/paired.h"

namespace ll::data {
namespace {

// (B, 1, H, W) from a function of (b, y, x).
template <typename F>
Tensor image(int64_t B, int64_t H, int64_t W, F f) {
  std::vector<float> v;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) v.push_back(f(b, y, x));
  return Tensor::from_vector(v, {B, 1, H, W});
}

TEST(PairedData, ParsesTasks) {
  EXPECT_EQ(parse_pair_task("edges"), PairTask::Edges);
  EXPECT_EQ(parse_pair_task("inpaint"), PairTask::Inpaint);
  EXPECT_STREQ(pair_task_name(PairTask::Inpaint), "inpaint");
  try {
    parse_pair_task("colorize");
    FAIL() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("--task"), std::string::npos) << e.what();
  }
}

TEST(PairedData, SobelEdgesOfAStepAndOfAFlatImage) {
  // A vertical step at x = 5 (0 left, 1 right) in a 10 x 10 image whose outside reads as 0: the
  // edges are the two columns beside the step (|gx| = 4 there) and the border where the 1s meet
  // the zero padding; a constant 0 image has none.
  const Tensor step = image(1, 10, 10, [](int64_t, int64_t, int64_t x) { return x >= 5 ? 1.0f : 0.0f; });
  PairOptions o;
  o.task = PairTask::Edges;
  o.edge_threshold = 0.5f;
  const std::vector<float> e = make_pair_inputs(step, {0}, o).to_vector();
  for (int64_t y = 1; y < 9; ++y) {  // away from the top and bottom rows
    for (int64_t x = 0; x < 10; ++x) {
      const bool expect = x == 4 || x == 5 || x == 9;
      EXPECT_EQ(e[static_cast<size_t>(y * 10 + x)], expect ? 1.0f : 0.0f) << "y " << y << " x " << x;
    }
  }
  // Only 0 and 1.
  for (float v : e) EXPECT_TRUE(v == 0.0f || v == 1.0f);
  const Tensor flat = image(2, 6, 6, [](int64_t, int64_t, int64_t) { return 0.0f; });
  for (float v : make_pair_inputs(flat, {0, 1}, o).to_vector()) EXPECT_EQ(v, 0.0f);
  // A higher threshold keeps fewer edges: the step's |gx| = 4 survives 3.9, not 4.1.
  o.edge_threshold = 3.9f;
  EXPECT_EQ(make_pair_inputs(step, {0}, o).to_vector()[5 * 10 + 4], 1.0f);
  o.edge_threshold = 4.1f;
  EXPECT_EQ(make_pair_inputs(step, {0}, o).to_vector()[5 * 10 + 4], 0.0f);
}

TEST(PairedData, InpaintMasksOneSquarePerImageChosenByItsIndex) {
  const int64_t B = 3, S = 28, m = 12;
  const Tensor y = image(B, S, S, [](int64_t b, int64_t yy, int64_t x) { return 0.01f * static_cast<float>((b + yy + x) % 50); });
  PairOptions o;
  o.task = PairTask::Inpaint;
  o.mask_size = m;
  o.seed = 7;
  const std::vector<int64_t> idx{5, 900, 12345};
  const Tensor x = make_pair_inputs(y, idx, o);
  const std::vector<float> xv = x.to_vector(), yv = y.to_vector();
  for (int64_t b = 0; b < B; ++b) {
    // Exactly one m x m square of 0.5 (the images' own values are < 0.5), the rest unchanged.
    int64_t top = S, left = S, count = 0;
    for (int64_t r = 0; r < S; ++r) {
      for (int64_t c = 0; c < S; ++c) {
        const size_t j = static_cast<size_t>((b * S + r) * S + c);
        if (xv[j] == 0.5f) {
          top = std::min(top, r);
          left = std::min(left, c);
          ++count;
        } else {
          EXPECT_EQ(xv[j], yv[j]);
        }
      }
    }
    EXPECT_EQ(count, m * m) << "image " << b;
    EXPECT_LE(top + m, S);
    EXPECT_LE(left + m, S);
  }
  // The same index gives the same hole alone or in another batch; another seed moves the holes.
  const Tensor alone = make_pair_inputs(y.slice(1, 2), {900}, o);
  EXPECT_EQ(alone.to_vector(), x.slice(1, 2).to_vector());
  o.seed = 8;
  EXPECT_NE(make_pair_inputs(y, idx, o).to_vector(), xv);
}

TEST(PairedData, RejectsBadArguments) {
  const Tensor y = image(2, 8, 8, [](int64_t, int64_t, int64_t) { return 0.0f; });
  PairOptions o;
  EXPECT_THROW(make_pair_inputs(y, {0}, o), std::invalid_argument);  // 1 index for 2 images
  EXPECT_THROW(make_pair_inputs(Tensor::zeros({8, 8}), {0}, o), std::invalid_argument);
  o.task = PairTask::Inpaint;
  o.mask_size = 9;
  EXPECT_THROW(make_pair_inputs(y, {0, 1}, o), std::invalid_argument);
}

}  // namespace
}  // namespace ll::data
