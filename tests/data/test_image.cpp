// test_image.cpp: make_grid geometry and values (torchvision's make_grid + save_image), PNG files
// that decode back to the same pixels, and stack_vertical.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/common/temp_dir.h"
#include "data/image.h"

// stb_image decodes the PNG files we write (an independent decoder, not our encoder run backwards).
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#include <stb/stb_image.h>

namespace ll::data {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

TEST(MakeGrid, GeometryPaddingAndValues) {
  // Three 1x2x2 images, two per row, padding 1 of value 9:
  //   xmaps = 2, ymaps = 2, each cell 3x3, grid (3 * 2 + 1) x (3 * 2 + 1) = 7 x 7;
  // the fourth cell stays padding, as in torchvision.
  const Tensor images = Tensor::from_vector({0.0f, 0.5f, 1.0f, 0.25f,    // image 0
                                             -1.0f, 2.0f, 26.0f / 255, 230.0f / 255,  // image 1: clamped
                                             0.2f, 0.4f, 0.6f, 0.8f},    // image 2
                                            {3, 1, 2, 2});
  const Image g = make_grid(images, /*nrow=*/2, /*padding=*/1, /*pad_value=*/9);
  EXPECT_EQ(g.width, 7);
  EXPECT_EQ(g.height, 7);
  EXPECT_EQ(g.channels, 1);
  // floor(255 x + 0.5): 0.5 -> 128 (a half rounds up), 0.25 -> 64, 0.2 -> 51, 0.4 -> 102, ...
  const std::vector<uint8_t> want = {
      9, 9,   9,   9, 9,   9,   9,  //
      9, 0,   128, 9, 0,   255, 9,  //
      9, 255, 64,  9, 26,  230, 9,  //
      9, 9,   9,   9, 9,   9,   9,  //
      9, 51,  102, 9, 9,   9,   9,  //
      9, 153, 204, 9, 9,   9,   9,  //
      9, 9,   9,   9, 9,   9,   9,  //
  };
  EXPECT_EQ(g.pixels, want);
}

TEST(MakeGrid, UpscaleRangeAndFewerImagesThanNrow) {
  // One 1x1x2 image in [-1, 1] at 2x, no padding: each pixel becomes a 2x2 block.
  const Tensor images = Tensor::from_vector({-1.0f, 0.0f}, {1, 1, 1, 2});
  const Image g = make_grid(images, /*nrow=*/8, /*padding=*/0, 0, -1.0f, 1.0f, /*upscale=*/2);
  EXPECT_EQ(g.width, 4);  // xmaps = min(8, 1) = 1
  EXPECT_EQ(g.height, 2);
  EXPECT_EQ(g.pixels, (std::vector<uint8_t>{0, 0, 128, 128, 0, 0, 128, 128}));

  // Two images at 3x with padding 2: (2 + 3) * 2 + 2 = 12 wide, (2 + 3) + 2 = 7 high.
  const Image h = make_grid(Tensor::from_vector({1.0f, 0.5f}, {2, 1, 1, 1}), 4, 2, 7, 0.0f, 1.0f, 3);
  EXPECT_EQ(h.width, 12);
  EXPECT_EQ(h.height, 7);
  for (int64_t y = 0; y < h.height; ++y) {
    for (int64_t x = 0; x < h.width; ++x) {
      const bool in_first = y >= 2 && y < 5 && x >= 2 && x < 5;
      const bool in_second = y >= 2 && y < 5 && x >= 7 && x < 10;
      const uint8_t expected = in_first ? 255 : in_second ? 128 : 7;
      EXPECT_EQ(h.pixels[y * h.width + x], expected) << "x " << x << " y " << y;
    }
  }
}

TEST(MakeGrid, ColorIsInterleaved) {
  // One 3x1x2 image: planes R = (1, 0), G = (0, 0.5), B = (0, 1).
  const Tensor images = Tensor::from_vector({1, 0, 0, 0.5f, 0, 1}, {1, 3, 1, 2});
  const Image g = make_grid(images, 8, 1, 255);
  EXPECT_EQ(g.channels, 3);
  EXPECT_EQ(g.width, 4);
  EXPECT_EQ(g.height, 3);
  // Row 1, pixels 1 and 2 are the image; the rest is white padding.
  const size_t row = 1 * 4 * 3;
  EXPECT_EQ(std::vector<uint8_t>(g.pixels.begin() + row, g.pixels.begin() + row + 12),
            (std::vector<uint8_t>{255, 255, 255, 255, 0, 0, 0, 128, 255, 255, 255, 255}));
}

TEST(MakeGrid, RejectsWhatItCannotDraw) {
  EXPECT_THROW(make_grid(Tensor::zeros({1, 2, 4, 4})), std::invalid_argument);  // 2 channels
  EXPECT_THROW(make_grid(Tensor::zeros({1, 4, 4})), std::invalid_argument);     // 3-D
  EXPECT_THROW(make_grid(Tensor::zeros({0, 1, 4, 4})), std::invalid_argument);  // no images
  EXPECT_THROW(make_grid(Tensor::zeros({1, 1, 4, 4}), 0), std::invalid_argument);
  EXPECT_THROW(make_grid(Tensor::zeros({1, 1, 4, 4}), 8, 2, 0, 0.0f, 1.0f, 0), std::invalid_argument);
  EXPECT_THROW(make_grid(Tensor::zeros({1, 1, 4, 4}), 8, 2, 0, 1.0f, 1.0f), std::invalid_argument);
  EXPECT_THROW(make_grid(Tensor()), std::invalid_argument);
}

TEST(SavePng, WritesAPngThatDecodesBack) {
  TempDir dir("image");
  for (const int64_t channels : {1, 3}) {
    Image img;
    img.width = 5;
    img.height = 3;
    img.channels = channels;
    for (int64_t i = 0; i < img.width * img.height * channels; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 17));
    const std::string path = dir.file("img" + std::to_string(channels) + ".png");
    save_png(path, img);
    const std::vector<uint8_t> bytes = read_bytes(path);
    const std::vector<uint8_t> signature = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    ASSERT_GE(bytes.size(), signature.size());
    EXPECT_TRUE(std::equal(signature.begin(), signature.end(), bytes.begin()));

    int w = 0, h = 0, c = 0;
    stbi_uc* decoded = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &c, 0);
    ASSERT_NE(decoded, nullptr) << stbi_failure_reason();
    EXPECT_EQ(w, 5);
    EXPECT_EQ(h, 3);
    EXPECT_EQ(c, channels);
    EXPECT_EQ(std::vector<uint8_t>(decoded, decoded + w * h * c), img.pixels);
    stbi_image_free(decoded);
  }
  // Only the two PNG files: no temporary left behind.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()), 2);
}

TEST(EncodePng, TheBytesSavePngWrites) {
  TempDir dir("image");
  const Image grid = make_grid(Tensor::full({3, 1, 6, 6}, 0.25f), 3, 1);
  save_png(dir.file("g.png"), grid);
  EXPECT_EQ(encode_png(grid), read_bytes(dir.file("g.png")));
  Image inconsistent = grid;
  inconsistent.pixels.pop_back();
  try {
    encode_png(inconsistent);
    FAIL() << "encoded an image with too few bytes";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("encode_png"), std::string::npos) << e.what();
  }
  EXPECT_THROW(encode_png(Image{}), std::invalid_argument);
}

TEST(SavePng, GridToFileAndErrorsNameThePath) {
  TempDir dir("image");
  const Image grid = make_grid(Tensor::full({10, 1, 28, 28}, 0.5f), 4);
  EXPECT_EQ(grid.width, 4 * 30 + 2);
  EXPECT_EQ(grid.height, 3 * 30 + 2);
  save_png(dir.file("grid.png"), grid);
  EXPECT_TRUE(fs::exists(dir.file("grid.png")));

  const std::string bad = dir.file("missing/dir/grid.png");
  try {
    save_png(bad, grid);
    FAIL() << "wrote into a missing folder";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
  Image inconsistent = grid;
  inconsistent.pixels.pop_back();
  EXPECT_THROW(save_png(dir.file("x.png"), inconsistent), std::invalid_argument);
  EXPECT_THROW(save_png(dir.file("y.png"), Image{}), std::invalid_argument);
}

TEST(StackVertical, ConcatenatesRows) {
  const Image top{2, 1, 1, {1, 2}}, bottom{2, 2, 1, {3, 4, 5, 6}};
  const Image s = stack_vertical({top, bottom});
  EXPECT_EQ(s.width, 2);
  EXPECT_EQ(s.height, 3);
  EXPECT_EQ(s.channels, 1);
  EXPECT_EQ(s.pixels, (std::vector<uint8_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_THROW(stack_vertical({top, Image{3, 1, 1, {0, 0, 0}}}), std::invalid_argument);
  EXPECT_THROW(stack_vertical({top, Image{2, 1, 3, {0, 0, 0, 0, 0, 0}}}), std::invalid_argument);
  EXPECT_THROW(stack_vertical({}), std::invalid_argument);
}

}  // namespace
}  // namespace ll::data
