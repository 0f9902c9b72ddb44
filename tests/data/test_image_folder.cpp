// test_image_folder.cpp: folders of PNG, JPEG and BMP files as data sets: layouts and labels, the
// order of files, center crop and resize, gray and RGB, broken and oversized files, missing and
// empty folders, and load_dataset's folder hook.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <zlib.h>

#include "data/dataset.h"
#include "data/image_folder.h"
#include "tests/common/temp_dir.h"

// The test writes its images with stb_image_write, compiled here with internal linkage so it cannot
// clash with the copy inside latentlab_data.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb/stb_image_write.h>  // the stb include dir is private to latentlab_data
#pragma GCC diagnostic pop

namespace ll::data {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

// An interleaved (h, w, c) image whose pixel (x, y) is color(x, y).
std::vector<uint8_t> make_pixels(int w, int h, int c, const std::function<std::vector<uint8_t>(int, int)>& color) {
  std::vector<uint8_t> p(static_cast<size_t>(w) * h * c);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const std::vector<uint8_t> v = color(x, y);
      for (int k = 0; k < c; ++k) p[(static_cast<size_t>(y) * w + x) * c + k] = v[k];
    }
  }
  return p;
}

void write_png(const std::string& path, int w, int h, int c, const std::vector<uint8_t>& pixels) {
  fs::create_directories(fs::path(path).parent_path());
  ASSERT_TRUE(stbi_write_png(path.c_str(), w, h, c, pixels.data(), w * c)) << path;
}

// A w x h image of one color (c = 1: gray value rgb[0]).
void write_solid_png(const std::string& path, int w, int h, std::vector<uint8_t> rgb) {
  const int c = static_cast<int>(rgb.size());
  write_png(path, w, h, c, make_pixels(w, h, c, [&](int, int) { return rgb; }));
}

void write_bytes(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

// The pixel (x, y) of channel ch of image i.
int pixel(const Dataset& ds, int64_t i, int64_t ch, int64_t y, int64_t x) {
  return ds.images[static_cast<size_t>(((i * ds.channels + ch) * ds.height + y) * ds.width + x)];
}

// The message of the exception `f` throws as E (fails the test when it throws nothing).
template <typename E, typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception thrown";
  return "";
}

ImageFolderOptions options(int64_t size, int64_t channels, bool labels) {
  ImageFolderOptions o;
  o.size = size;
  o.channels = channels;
  o.labels_from_subfolders = labels;
  return o;
}

TEST(ImageFolder, LabelsFromSubfoldersInSortedClassOrder) {
  TempDir t("imgfolder");
  // Created out of order; each image's red value says which one it is.
  write_solid_png(t / "dog/2.png", 8, 8, {50, 0, 0});
  write_solid_png(t / "dog/1.png", 8, 8, {40, 0, 0});
  write_solid_png(t / "ant/x.png", 8, 8, {10, 0, 0});
  write_solid_png(t / "cat/b.png", 8, 8, {30, 0, 0});
  write_solid_png(t / "cat/a.png", 8, 8, {20, 0, 0});
  write_solid_png(t / "dog/deeper/3.png", 8, 8, {60, 0, 0});  // below a class folder: still that class
  // Not images, or hidden: all passed over.
  write_bytes(t / "dog/notes.txt", "not an image");
  write_bytes(t / "ant/._x.png", "AppleDouble resource fork");
  write_solid_png(t / ".thumbnails/t.png", 8, 8, {99, 0, 0});
  write_solid_png(t / "stray.png", 8, 8, {99, 0, 0});  // beside the classes: not in any class

  const Dataset ds = load_image_folder(t.path.string(), options(16, 3, true));
  EXPECT_EQ(ds.name, t.path.string());
  ASSERT_EQ(ds.n, 6);
  EXPECT_EQ(ds.channels, 3);
  EXPECT_EQ(ds.height, 16);
  EXPECT_EQ(ds.width, 16);
  EXPECT_EQ(ds.images.size(), static_cast<size_t>(6 * 3 * 16 * 16));
  EXPECT_EQ(ds.class_names, (std::vector<std::string>{"ant", "cat", "dog"}));
  EXPECT_EQ(ds.labels, (std::vector<int32_t>{0, 1, 1, 2, 2, 2}));
  // Sorted paths: dog/1.png < dog/2.png < dog/deeper/3.png ('.' sorts before 'd' and '/').
  const std::vector<int> reds = {10, 20, 30, 40, 50, 60};
  for (int64_t i = 0; i < ds.n; ++i) {
    EXPECT_EQ(pixel(ds, i, 0, 7, 7), reds[i]) << "image " << i;
    EXPECT_EQ(pixel(ds, i, 1, 7, 7), 0);
  }
}

TEST(ImageFolder, UnlabeledFolderIsRecursiveSortedAndDeterministic) {
  TempDir t("imgfolder");
  // 30 files in a shuffled creation order, in two levels; the gray value encodes the sorted position.
  std::vector<std::string> names;
  for (int i = 0; i < 30; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, i < 20 ? "img%02d.png" : "sub/img%02d.png", i);
    names.push_back(name);
  }
  for (int k = 0; k < 30; ++k) {
    const int i = (k * 7) % 30;  // 7 is coprime with 30: a permutation
    write_solid_png(t / names[i], 6, 6, {static_cast<uint8_t>(i * 8)});
  }
  ImageFolderReport report;
  const Dataset ds = load_image_folder(t.path.string(), options(4, 1, false), &report);
  EXPECT_EQ(report.found, 30);
  EXPECT_TRUE(report.skipped.empty());
  ASSERT_EQ(ds.n, 30);
  EXPECT_TRUE(ds.labels.empty());
  EXPECT_TRUE(ds.class_names.empty());
  for (int64_t i = 0; i < 30; ++i) EXPECT_EQ(pixel(ds, i, 0, 2, 2), i * 8) << "image " << i;

  const Dataset again = load_image_folder(t.path.string(), options(4, 1, false));
  EXPECT_EQ(again.images, ds.images);
}

// A 40 x 20 picture in four vertical bands (red | green | blue | white, 10 pixels each): its central
// square is columns 10..29, the green and blue bands only.
std::vector<uint8_t> four_bands(int x, int) {
  switch (x / 10) {
    case 0: return {255, 0, 0};
    case 1: return {0, 255, 0};
    case 2: return {0, 0, 255};
    default: return {255, 255, 255};
  }
}

TEST(ImageFolder, CenterCropKeepsOnlyTheMiddleOfAWideImage) {
  TempDir t("imgfolder");
  write_png(t / "wide.png", 40, 20, 3, make_pixels(40, 20, 3, four_bands));

  // Same side as the crop: the crop itself, exactly.
  const Dataset same = load_image_folder(t.path.string(), options(20, 3, false));
  for (int y = 0; y < 20; ++y) {
    for (int x = 0; x < 20; ++x) {
      const std::vector<uint8_t> want = four_bands(x + 10, y);
      for (int c = 0; c < 3; ++c) ASSERT_EQ(pixel(same, 0, c, y, x), want[c]) << x << "," << y;
    }
  }

  // Halved: the left half green, the right half blue; only the two columns at the seam mix. No red
  // or white from outside the square leaks in (the filter clamps at the square's edge).
  const Dataset half = load_image_folder(t.path.string(), options(10, 3, false));
  for (int y = 0; y < 10; ++y) {
    for (int x = 0; x < 10; ++x) {
      EXPECT_EQ(pixel(half, 0, 0, y, x), 0) << "red at " << x << "," << y;
      if (x <= 3) {
        EXPECT_EQ(pixel(half, 0, 1, y, x), 255);
        EXPECT_EQ(pixel(half, 0, 2, y, x), 0);
      } else if (x >= 6) {
        EXPECT_EQ(pixel(half, 0, 1, y, x), 0);
        EXPECT_EQ(pixel(half, 0, 2, y, x), 255);
      } else {
        EXPECT_NEAR(pixel(half, 0, 1, y, x) + pixel(half, 0, 2, y, x), 255, 2);  // a blend of the two
      }
    }
  }
}

TEST(ImageFolder, CenterCropOfATallImageAndUpscaling) {
  TempDir t("imgfolder");
  // 10 x 30: top third black, middle white, bottom third black; the central square is the middle
  // rows 10..19, all white.
  write_png(t / "tall.png", 10, 30, 1, make_pixels(10, 30, 1, [](int, int y) {
              return std::vector<uint8_t>{static_cast<uint8_t>(y >= 10 && y < 20 ? 255 : 0)};
            }));
  const Dataset ds = load_image_folder(t.path.string(), options(32, 1, false));  // 10 -> 32: upscaled
  ASSERT_EQ(ds.n, 1);
  EXPECT_EQ(ds.height, 32);
  for (const uint8_t v : ds.images) ASSERT_EQ(v, 255);
}

TEST(ImageFolder, GrayAndRgbConversion) {
  TempDir t("imgfolder");
  write_solid_png(t / "a_red.png", 8, 8, {255, 0, 0});
  write_solid_png(t / "b_gray.png", 8, 8, {200});  // a one-channel PNG

  const Dataset gray = load_image_folder(t.path.string(), options(8, 1, false));
  ASSERT_EQ(gray.channels, 1);
  EXPECT_EQ(gray.images.size(), static_cast<size_t>(2 * 8 * 8));
  EXPECT_EQ(pixel(gray, 0, 0, 3, 3), 76);  // stb's luma: (77 R + 150 G + 29 B) >> 8
  EXPECT_EQ(pixel(gray, 1, 0, 3, 3), 200);

  const Dataset rgb = load_image_folder(t.path.string(), options(8, 3, false));
  ASSERT_EQ(rgb.channels, 3);
  EXPECT_EQ(pixel(rgb, 0, 0, 3, 3), 255);
  EXPECT_EQ(pixel(rgb, 0, 1, 3, 3), 0);
  EXPECT_EQ(pixel(rgb, 0, 2, 3, 3), 0);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(pixel(rgb, 1, c, 3, 3), 200);  // gray to RGB: equal channels
}

TEST(ImageFolder, JpegBmpAndExtensionsInAnyCase) {
  TempDir t("imgfolder");
  const std::vector<uint8_t> olive = make_pixels(16, 16, 3, [](int, int) { return std::vector<uint8_t>{128, 128, 0}; });
  ASSERT_TRUE(stbi_write_jpg((t / "a.JPG").c_str(), 16, 16, 3, olive.data(), 95));
  ASSERT_TRUE(stbi_write_jpg((t / "b.Jpeg").c_str(), 16, 16, 3, olive.data(), 95));
  ASSERT_TRUE(stbi_write_bmp((t / "c.bmp").c_str(), 16, 16, 3, olive.data()));
  write_solid_png(t / "d.PNG", 16, 16, {128, 128, 0});
  write_solid_png(t / "e.gif", 16, 16, {128, 128, 0});  // not an accepted extension

  EXPECT_TRUE(has_image_extension("x.JpEg"));
  EXPECT_FALSE(has_image_extension("x.gif"));
  EXPECT_FALSE(has_image_extension("png"));

  const Dataset ds = load_image_folder(t.path.string(), options(16, 3, false));
  ASSERT_EQ(ds.n, 4);
  for (int64_t i = 0; i < 4; ++i) {
    EXPECT_NEAR(pixel(ds, i, 0, 8, 8), 128, 4) << i;  // JPEG is lossy, a little
    EXPECT_NEAR(pixel(ds, i, 1, 8, 8), 128, 4) << i;
    EXPECT_NEAR(pixel(ds, i, 2, 8, 8), 0, 4) << i;
  }
}

TEST(ImageFolder, BrokenFileIsSkippedWithOneWarning) {
  TempDir t("imgfolder");
  write_solid_png(t / "a/1.png", 8, 8, {10, 10, 10});
  write_bytes(t / "a/2_broken.png", "this is not a PNG at all");
  write_solid_png(t / "b/1.png", 8, 8, {20, 20, 20});
  write_solid_png(t / "b/2.png", 8, 8, {30, 30, 30});

  ImageFolderReport report;
  testing::internal::CaptureStderr();
  const Dataset ds = load_image_folder(t.path.string(), options(8, 3, true), &report);
  const std::string err = testing::internal::GetCapturedStderr();

  ASSERT_EQ(ds.n, 3);
  EXPECT_EQ(ds.labels, (std::vector<int32_t>{0, 1, 1}));  // labels follow their images past the gap
  EXPECT_EQ(pixel(ds, 0, 0, 0, 0), 10);
  EXPECT_EQ(pixel(ds, 1, 0, 0, 0), 20);
  EXPECT_EQ(pixel(ds, 2, 0, 0, 0), 30);
  EXPECT_EQ(report.found, 4);
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_NE(report.skipped[0].find("2_broken.png"), std::string::npos) << report.skipped[0];
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_NE(err.find("skipped 1 of 4"), std::string::npos) << err;
  EXPECT_NE(err.find("2_broken.png"), std::string::npos) << err;
}

TEST(ImageFolder, BrokenFileFailsNamingTheFirstBrokenFile) {
  TempDir t("imgfolder");
  // Many files so that the parallel decode really runs out of order; two are broken.
  for (int i = 0; i < 40; ++i) {
    char name[32];
    std::snprintf(name, sizeof name, "f%02d.png", i);
    if (i == 13 || i == 31) {
      write_bytes(t / name, std::string(100, '\x42'));
    } else {
      write_solid_png(t / name, 8, 8, {1, 2, 3});
    }
  }
  // A truncated PNG: a valid header, no data; decoding must fail, not read past the end.
  std::vector<uint8_t> good;
  stbi_write_png_to_func([](void* ctx, void* data, int size) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  }, &good, 8, 8, 1, std::vector<uint8_t>(64, 7).data(), 8);
  write_bytes(t / "sub/truncated.png", std::string(good.begin(), good.begin() + 40));

  ImageFolderOptions o = options(8, 3, false);
  o.on_error = OnImageError::Fail;
  for (int repeat = 0; repeat < 3; ++repeat) {
    const std::string msg = error_of<std::runtime_error>([&] { load_image_folder(t.path.string(), o); });
    EXPECT_NE(msg.find("f13.png"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }

  // The truncated file alone.
  TempDir t2("imgfolder");
  write_bytes(t2 / "truncated.png", std::string(good.begin(), good.begin() + 40));
  write_solid_png(t2 / "ok.png", 8, 8, {1, 2, 3});
  const std::string msg = error_of<std::runtime_error>([&] { load_image_folder(t2.path.string(), o); });
  EXPECT_NE(msg.find("truncated.png"), std::string::npos) << msg;
}

TEST(ImageFolder, MaxPixelsRefusesLargeImagesBeforeDecoding) {
  TempDir t("imgfolder");
  write_solid_png(t / "big.png", 8, 8, {1, 2, 3});  // 64 pixels

  ImageFolderOptions o = options(8, 3, false);
  o.max_pixels = 63;
  o.on_error = OnImageError::Fail;
  const std::string msg = error_of<std::runtime_error>([&] { load_image_folder(t.path.string(), o); });
  EXPECT_NE(msg.find("big.png"), std::string::npos) << msg;
  EXPECT_NE(msg.find("8 x 8 = 64 pixels, more than max_pixels = 63"), std::string::npos) << msg;

  // Skipped, it leaves no image at all: that is an error too, saying why.
  o.on_error = OnImageError::Skip;
  testing::internal::CaptureStderr();
  const std::string none = error_of<std::runtime_error>([&] { load_image_folder(t.path.string(), o); });
  testing::internal::GetCapturedStderr();
  EXPECT_NE(none.find("none of its 1 image files could be read"), std::string::npos) << none;
  EXPECT_NE(none.find("max_pixels"), std::string::npos) << none;

  o.max_pixels = 64;  // the limit itself is allowed
  EXPECT_EQ(load_image_folder(t.path.string(), o).n, 1);
}

// Files found by fuzzing the reader (fuzz/fuzz_image.cpp), cut down to what matters. Each is refused
// with a reason before stb_image decodes it, or (the last) reads correctly.
std::string refusal_of(const TempDir& t, const std::string& name, const std::string& bytes) {
  write_bytes(t / name, bytes);
  ImageFolderOptions o = options(16, 3, false);
  o.on_error = OnImageError::Fail;
  const std::string msg = error_of<std::runtime_error>([&] { load_image_folder(t.path.string(), o); });
  fs::remove(t / name);
  return msg;
}

TEST(ImageFolder, JpegHuffmanTableOfMoreThan256CodesIsRefused) {
  // SOI (after fill bytes, which stb skips), then a DHT segment whose 16 code counts add up to
  // 16 x 17 = 272: stb_image 2.27 wrote past its 257-entry table (an out-of-bounds write that
  // UndefinedBehaviorSanitizer reported in stbi__build_huffman), in stbi_info already.
  std::string jpeg = "\xFF\xFF\xFF\xD8\xFF\xC4";
  jpeg += std::string("\x01\x23", 2) + '\x00' + std::string(16, '\x11') + std::string(272, '\x01');
  jpeg += "\xFF\xD9";
  TempDir t("imgfolder");
  const std::string msg = refusal_of(t, "dht.jpg", jpeg);
  EXPECT_NE(msg.find("dht.jpg"), std::string::npos) << msg;
  EXPECT_NE(msg.find("corrupt JPEG: the Huffman table at byte 4 declares 272 codes, more than 256"), std::string::npos)
      << msg;
}

TEST(ImageFolder, JpegScanWithAnUndefinedHuffmanTableIsRefused) {
  // A valid color JPEG (stb_image_write's: DC 0, AC 0, DC 1, AC 1 in one DHT segment) whose fourth
  // table is relabeled DC 1, so that no AC table 1 exists while the chroma components decode with it:
  // stb_image 2.27 read that table from memory it never initialized and indexed its values 65281
  // entries before their start (found by fuzz/fuzz_image.cpp, a 711-byte JPEG).
  std::vector<uint8_t> jpeg;
  stbi_write_jpg_to_func([](void* ctx, void* data, int size) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  }, &jpeg, 8, 8, 3, make_pixels(8, 8, 3, [](int x, int y) {
    return std::vector<uint8_t>{static_cast<uint8_t>(x * 30), static_cast<uint8_t>(y * 30), 90};
  }).data(), 90);
  size_t k = 0;
  while (k + 1 < jpeg.size() && !(jpeg[k] == 0xFF && jpeg[k + 1] == 0xC4)) ++k;
  ASSERT_LT(k + 1, jpeg.size()) << "no DHT segment";
  k += 4;  // the first table's class and id
  for (int table = 0; table < 3; ++table) {
    size_t codes = 0;
    for (size_t c = 1; c <= 16; ++c) codes += jpeg[k + c];
    k += 17 + codes;
  }
  ASSERT_EQ(jpeg[k], 0x11);  // AC table 1
  TempDir t("imgfolder");
  write_bytes(t / "ok.jpg", std::string(jpeg.begin(), jpeg.end()));
  EXPECT_EQ(load_image_folder(t.path.string(), options(8, 3, false)).n, 1);  // as written, it loads
  fs::remove(t / "ok.jpg");
  jpeg[k] = 0x01;
  const std::string msg = refusal_of(t, "no_ac1.jpg", std::string(jpeg.begin(), jpeg.end()));
  EXPECT_NE(msg.find("decodes with the AC Huffman table 1, which no DHT segment before it defines"), std::string::npos)
      << msg;
}

TEST(ImageFolder, PngChunkLongerThanTheFileIsRefusedBeforeAllocating) {
  // A valid 3x5 RGBA PNG whose IDAT chunk declares 0x5F00004C bytes (1.5 GB): stb_image allocated
  // that much before finding the bytes missing (libFuzzer's -malloc_limit_mb caught it).
  std::vector<uint8_t> png;
  stbi_write_png_to_func([](void* ctx, void* data, int size) {
    auto* v = static_cast<std::vector<uint8_t>*>(ctx);
    v->insert(v->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
  }, &png, 3, 5, 4, std::vector<uint8_t>(60, 9).data(), 12);
  ASSERT_EQ(std::string(png.begin() + 37, png.begin() + 41), "IDAT");  // after the signature and IHDR
  png[33] = 0x5F;
  png[34] = 0x00;
  png[35] = 0x00;
  png[36] = 0x4C;
  TempDir t("imgfolder");
  const std::string msg = refusal_of(t, "long_chunk.png", std::string(png.begin(), png.end()));
  EXPECT_NE(msg.find("truncated PNG: chunk 'IDAT' at byte 33 declares 1593835596 bytes of data"), std::string::npos)
      << msg;
}

// A PNG is one zlib stream over its IDAT chunks; stb_image 2.27 inflates however much the stream
// holds (up to 4 GiB) into a buffer it keeps doubling. Here an 8x8 gray PNG (72 bytes of rows needed)
// whose stream inflates to 8 MiB of zeros, from a file of about 8 KB: refused before stb inflates it,
// while the same image with the right amount of data loads.
std::string png_with_stream(uint32_t w, uint32_t h, const std::vector<uint8_t>& raw) {
  auto be32 = [](uint32_t v) {
    return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
  };
  auto chunk = [&](const std::string& type, const std::string& data) {
    const std::string td = type + data;
    return be32(static_cast<uint32_t>(data.size())) + td +
           be32(static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(td.data()), static_cast<uInt>(td.size()))));
  };
  uLongf packed_size = compressBound(static_cast<uLong>(raw.size()));
  std::string packed(packed_size, '\0');
  EXPECT_EQ(compress2(reinterpret_cast<Bytef*>(packed.data()), &packed_size, raw.data(), static_cast<uLong>(raw.size()), 9), Z_OK);
  packed.resize(packed_size);
  const std::string ihdr = be32(w) + be32(h) + std::string{8, 0, 0, 0, 0};  // 8-bit gray, not interlaced
  return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", packed) + chunk("IEND", "");
}

TEST(ImageFolder, PngWhoseImageDataInflatesFarBeyondItsSizeIsRefused) {
  TempDir t("imgfolder");
  std::vector<uint8_t> rows(8 * 9, 0);  // 8 rows: filter byte 0, then 8 pixels
  for (int y = 0; y < 8; ++y)
    for (int x = 0; x < 8; ++x) rows[static_cast<size_t>(y * 9 + 1 + x)] = static_cast<uint8_t>(30 * x);
  write_bytes(t / "ok/a.png", png_with_stream(8, 8, rows));
  const Dataset ds = load_image_folder(t / "ok", options(8, 1, false));
  ASSERT_EQ(ds.n, 1);
  EXPECT_EQ(pixel(ds, 0, 0, 3, 5), 150);

  std::vector<uint8_t> bomb = rows;
  bomb.resize(size_t{8} << 20, 0);  // the same rows, then 8 MiB of zeros
  const std::string file = png_with_stream(8, 8, bomb);
  EXPECT_LT(file.size(), 20000u);
  const std::string msg = refusal_of(t, "bomb.png", file);
  EXPECT_NE(msg.find("corrupt PNG: its image data inflates to more than 1048720 bytes, while its header's size needs 72"),
            std::string::npos)
      << msg;
}

TEST(ImageFolder, BmpWithoutPixelsIsRefused) {
  // A 24-bit BMP of width 1 and height 0: stb reads it as an image without pixels, and the center
  // crop (side 0) made the resize divide by zero (UndefinedBehaviorSanitizer: NaN converted to int).
  std::string bmp = "BM";
  auto le32 = [&](uint32_t v) { for (int i = 0; i < 4; ++i) bmp += static_cast<char>(v >> (8 * i)); };
  le32(58);                       // file size
  le32(0);                        // reserved
  le32(54);                       // offset of the pixels
  le32(40);                       // BITMAPINFOHEADER
  le32(1);                        // width
  le32(0);                        // height
  bmp += std::string("\x01\x00\x18\x00", 4);  // 1 plane, 24 bits
  for (int i = 0; i < 6; ++i) le32(0);            // no compression, sizes, resolutions, palette
  bmp += std::string(4, '\x7f');
  TempDir t("imgfolder");
  const std::string msg = refusal_of(t, "flat.bmp", bmp);
  EXPECT_NE(msg.find("an image of 1 x 0 pixels (none)"), std::string::npos) << msg;
}

TEST(ImageFolder, ShrinkingByALittleReadsCorrectly) {
  // stb_image_resize asserts that each output pixel's weights add up to 0.9..1.1 before it
  // normalizes them; shrinking 21 -> 16 or 78 -> 64 fails that assertion although the normalized
  // result is right, so a build with assertions on aborted on such pictures (a 768 x 21 BMP under
  // the fuzzer). The assertion is off now; the result is the ramp it should be.
  TempDir t("imgfolder");
  for (const auto& [side, size] : std::vector<std::pair<int, int>>{{21, 16}, {78, 64}}) {
    write_png(t / "ramp.png", side, side, 1, make_pixels(side, side, 1, [&](int x, int) {
                return std::vector<uint8_t>{static_cast<uint8_t>(x * 255 / (side - 1))};
              }));
    const Dataset ds = load_image_folder(t.path.string(), options(size, 1, false));
    ASSERT_EQ(ds.n, 1);
    for (int x = 0; x < size; ++x) {
      // Output pixel x samples the input around ((x + 0.5) * side / size - 0.5).
      const double ramp = ((x + 0.5) * side / size - 0.5) * 255.0 / (side - 1);
      EXPECT_NEAR(pixel(ds, 0, 0, size / 2, x), ramp, 4.0) << side << " -> " << size << ", x " << x;
    }
  }
}

TEST(ImageFolder, MissingAndEmptyFoldersAreNotFound) {
  TempDir t("imgfolder");
  const std::string missing = (t.path / "nowhere").string();
  std::string msg = error_of<DatasetNotFound>([&] { load_image_folder(missing, options(8, 3, false)); });
  EXPECT_NE(msg.find(missing), std::string::npos) << msg;
  EXPECT_NE(msg.find("does not exist"), std::string::npos) << msg;

  write_bytes(t / "readme.txt", "no images here");
  msg = error_of<DatasetNotFound>([&] { load_image_folder(t.path.string(), options(8, 3, false)); });
  EXPECT_NE(msg.find(t.path.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("no .jpg, .jpeg, .png or .bmp files"), std::string::npos) << msg;

  msg = error_of<DatasetNotFound>([&] { load_image_folder(t.path.string(), options(8, 3, true)); });
  EXPECT_NE(msg.find("no class subfolders"), std::string::npos) << msg;

  fs::create_directories(t.path / "empty_class");
  write_solid_png(t / "full_class/1.png", 8, 8, {1, 2, 3});
  msg = error_of<DatasetNotFound>([&] { load_image_folder(t.path.string(), options(8, 3, true)); });
  EXPECT_NE(msg.find("'empty_class' holds no"), std::string::npos) << msg;

  msg = error_of<DatasetNotFound>([&] { load_image_folder((t.path / "readme.txt").string(), options(8, 3, false)); });
  EXPECT_NE(msg.find("is not a folder"), std::string::npos) << msg;
}

TEST(ImageFolder, BadOptionsAreRefused) {
  TempDir t("imgfolder");
  write_solid_png(t / "1.png", 8, 8, {1, 2, 3});
  EXPECT_THROW(load_image_folder(t.path.string(), options(0, 3, false)), std::invalid_argument);
  EXPECT_THROW(load_image_folder(t.path.string(), options(8, 2, false)), std::invalid_argument);
  ImageFolderOptions o = options(8, 3, false);
  o.max_pixels = 0;
  EXPECT_THROW(load_image_folder(t.path.string(), o), std::invalid_argument);
}

TEST(ImageFolder, LoadDatasetReadsImageFolders) {
  TempDir t("imgfolder");
  // Class subfolders, no images of its own: labeled, 64 x 64 RGB.
  write_solid_png(t / "classes/b/1.png", 100, 80, {9, 9, 9});
  write_solid_png(t / "classes/a/1.png", 30, 30, {5, 5, 5});
  const Dataset labeled = load_dataset((t.path / "classes").string(), Split::Train);
  EXPECT_EQ(labeled.n, 2);
  EXPECT_EQ(labeled.channels, 3);
  EXPECT_EQ(labeled.height, 64);
  EXPECT_EQ(labeled.width, 64);
  EXPECT_EQ(labeled.class_names, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(labeled.labels, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(pixel(labeled, 1, 0, 10, 10), 9);

  // Images of its own: unlabeled, subfolders included; both splits see the same images.
  write_solid_png(t / "flat/x.png", 10, 10, {1, 1, 1});
  write_solid_png(t / "flat/more/y.png", 10, 10, {2, 2, 2});
  const Dataset flat = load_dataset((t.path / "flat").string(), Split::Test);
  EXPECT_EQ(flat.n, 2);
  EXPECT_TRUE(flat.labels.empty());
  EXPECT_EQ(flat.name, (t.path / "flat").string());

  // train/ and test/ subfolders: the split picks one.
  write_solid_png(t / "split/train/cat/1.png", 10, 10, {1, 1, 1});
  write_solid_png(t / "split/train/dog/1.png", 10, 10, {1, 1, 1});
  write_solid_png(t / "split/train/dog/2.png", 10, 10, {1, 1, 1});
  write_solid_png(t / "split/test/cat/1.png", 10, 10, {1, 1, 1});
  write_solid_png(t / "split/test/dog/1.png", 10, 10, {1, 1, 1});
  const std::string split = (t.path / "split").string();
  EXPECT_EQ(load_dataset(split, Split::Train).n, 3);
  const Dataset test = load_dataset(split, Split::Test);
  EXPECT_EQ(test.n, 2);
  EXPECT_EQ(test.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(test.name, split);

  // Only train/: it serves both splits.
  write_solid_png(t / "trainonly/train/1.png", 10, 10, {1, 1, 1});
  EXPECT_EQ(load_dataset((t.path / "trainonly").string(), Split::Test).n, 1);

  // A folder with IDX files stays an IDX folder, even with pictures beside them.
  write_bytes(t / "idx/train-images-idx3-ubyte", "x");
  write_solid_png(t / "idx/preview.png", 10, 10, {1, 1, 1});
  EXPECT_THROW(load_dataset((t.path / "idx").string(), Split::Test), DatasetNotFound);

  // An empty folder is still not found.
  fs::create_directories(t.path / "empty");
  EXPECT_THROW(load_dataset((t.path / "empty").string(), Split::Train), DatasetNotFound);
}

}  // namespace
}  // namespace ll::data
