// image_folder.cpp: decoding, cropping and resizing the images of image_folder.h.
#include "data/image_folder.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <system_error>

// stb_image and stb_image_resize (Sean Barrett, public domain; Debian's libstb-dev), compiled here
// with internal linkage (the _STATIC macros) so that no other file of a program that links us can
// collide with their symbols. NO_STDIO: we read the file ourselves, once, and hand stb the bytes, so a
// missing or unreadable file gets our own message. ONLY_*: the three formats we accept, so a file in
// any other format is refused by its bytes, not just by its name. Their code is not ours to keep
// warning-free, hence the pragmas.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_NO_STDIO
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_STATIC
// stb's internal assertions are left out, as NDEBUG leaves them out of a Release build, so that a
// build with assertions on reads images as the Release build does instead of aborting:
// stb_image_resize 0.97 asserts that the weights of each output pixel add up to 0.9..1.1 before it
// normalizes them to 1, which fails when shrinking by a little (21 -> 16, 77..90 -> 64 pixels, ...)
// on ordinary pictures, although the normalized result is right; stb_image asserts on the state of
// its JPEG bit reader, which a corrupt file reaches.
#define STBI_ASSERT(x) ((void)0)
#define STBIR_ASSERT(x) ((void)0)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#include <stb_image.h>
#include <stb_image_resize.h>
#pragma GCC diagnostic pop

namespace ll::data {
namespace {

namespace fs = std::filesystem;

bool is_hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

std::string quoted(const fs::path& p) { return "'" + p.string() + "'"; }

// Every image file in `dir` and below, sorted by path (byte-wise), hidden names passed over.
std::vector<std::string> list_images(const fs::path& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  const fs::recursive_directory_iterator end;
  while (!ec && it != end) {
    std::error_code ignored;  // an entry whose type cannot be read is simply not an image we can use
    if (is_hidden(it->path())) {
      if (it->is_directory(ignored)) it.disable_recursion_pending();
    } else if (it->is_regular_file(ignored) && has_image_extension(it->path().filename().string())) {
      files.push_back(it->path().string());
    }
    it.increment(ec);
  }
  if (ec) throw std::runtime_error("image folder " + quoted(dir) + ": cannot list it: " + ec.message());
  std::sort(files.begin(), files.end());
  return files;
}

// The non-hidden immediate subfolders of `dir`, sorted by name.
std::vector<std::string> list_subfolders(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ignored;
    if (!is_hidden(it->path()) && it->is_directory(ignored)) names.push_back(it->path().filename().string());
  }
  if (ec) throw std::runtime_error("image folder " + quoted(dir) + ": cannot list it: " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

bool has_direct_images(const fs::path& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ignored;
    if (!is_hidden(it->path()) && it->is_regular_file(ignored) &&
        has_image_extension(it->path().filename().string())) {
      return true;
    }
  }
  return false;
}

// The whole file, or an error message (empty on success).
std::string read_file(const std::string& path, std::vector<unsigned char>& bytes) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "cannot open it: " + std::string(std::strerror(errno));
  const std::streamoff size = in.tellg();
  // stb takes the length as an int; no JPEG, PNG or BMP under max_pixels comes near 2 GiB.
  if (size < 0 || size > INT_MAX) return "the file is too large to be an image we can decode";
  bytes.resize(static_cast<size_t>(size));
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), size)) return "cannot read it";
  return "";
}

// stb_image 2.27 (Debian 12's libstb-dev) trusts the code counts of a JPEG Huffman table: a DHT
// segment whose 16 counts add up to more than 256 makes it write past the table's arrays
// (stbi__build_huffman's size[257], then values[256]), in stbi_info as much as in decoding. stb 2.28
// refuses such tables ("bad DHT header"); until Debian ships it, we refuse them before stb sees the
// bytes. The walk follows the segments as stb reads them: in marker context segments are skipped
// by their length (junk between them byte by byte, as stb does before the frame header); after a
// start of scan, entropy-coded data runs to the first FF xx that is neither a stuffed FF (FF 00) nor a
// restart marker (FF D0..D7), fill bytes (FF FF) included. Each table is read as stb reads it, even
// past its segment's end (zeros past the end of the file). It checks more places than stb may reach
// (such as a marker stb would never get to), never fewer, and a valid JPEG has no table over 256
// codes: only broken files are refused. Returns why the file is refused, or "" (also for non-JPEGs).
std::string check_jpeg_huffman_tables(const std::vector<unsigned char>& bytes) {
  const size_t n = bytes.size();
  auto at = [&](size_t i) -> unsigned { return i < n ? bytes[i] : 0u; };
  // The start-of-image marker FF D8, fill bytes allowed before the D8 as before any marker.
  if (n < 2 || bytes[0] != 0xFF) return "";
  size_t i = 1;
  while (i < n && bytes[i] == 0xFF) ++i;
  if (i >= n || bytes[i] != 0xD8) return "";  // not a JPEG
  ++i;
  bool entropy = false;
  while (i < n) {
    if (bytes[i] != 0xFF) {  // entropy-coded data, or junk between segments
      ++i;
      continue;
    }
    size_t j = i + 1;
    while (j < n && bytes[j] == 0xFF) ++j;  // fill bytes
    if (j >= n) return "";
    const unsigned marker = bytes[j];
    i = j + 1;
    if (entropy && (marker == 0x00 || (marker >= 0xD0 && marker <= 0xD7))) continue;  // stuffed FF, restart
    entropy = false;
    if (marker == 0xD9) return "";                                             // end of image
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;  // no length
    const size_t length = at(i) << 8 | at(i + 1);  // counts its own two bytes
    if (marker == 0xC4) {
      const size_t segment = i - 2;
      size_t k = i + 2;
      for (int64_t left = static_cast<int64_t>(length) - 2; left > 0;) {
        const unsigned table = at(k);
        if ((table >> 4) > 1 || (table & 15) > 3) break;  // stb refuses the segment itself
        size_t codes = 0;
        for (size_t c = 1; c <= 16; ++c) codes += at(k + c);
        if (codes > 256) {
          return "corrupt JPEG: the Huffman table at byte " + std::to_string(segment) + " declares " +
                 std::to_string(codes) + " codes, more than 256";
        }
        left -= static_cast<int64_t>(17 + codes);
        k += 17 + codes;
      }
    }
    if (marker == 0xDA) entropy = true;  // start of scan: its header, then entropy-coded data
    i += length;
  }
  return "";
}

// stb_image reads a PNG's chunks one after the other and, for image data (IDAT), enlarges its buffer
// to the length the chunk declares before it reads the chunk: a 100-byte file that declares a 1.5 GB
// chunk makes it allocate 1.5 GB, only to find the bytes missing. Every chunk is length (4 bytes,
// big-endian), type (4), data (length), CRC (4); a chunk that declares more data than the file holds
// after its header is refused here, before stb allocates anything. (stb would refuse the file a
// moment later anyway: missing data never decodes.) Returns why, or "" (also for non-PNGs).
std::string check_png_chunk_lengths(const std::vector<unsigned char>& bytes) {
  static constexpr unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  const size_t n = bytes.size();
  if (n < 8 || std::memcmp(bytes.data(), kSignature, 8) != 0) return "";
  for (size_t i = 8; i + 8 <= n;) {
    const uint64_t length = uint64_t{bytes[i]} << 24 | uint64_t{bytes[i + 1]} << 16 | uint64_t{bytes[i + 2]} << 8 |
                            uint64_t{bytes[i + 3]};
    std::string type;
    for (size_t k = i + 4; k < i + 8; ++k) type += std::isalpha(bytes[k]) ? static_cast<char>(bytes[k]) : '?';
    if (length > n - (i + 8)) {
      return "truncated PNG: chunk '" + type + "' at byte " + std::to_string(i) + " declares " +
             std::to_string(length) + " bytes of data, the file has " + std::to_string(n - (i + 8)) + " after it";
    }
    if (type == "IEND") break;
    i += 12 + length;  // header, data, CRC
  }
  return "";
}

struct StbFree {
  void operator()(stbi_uc* p) const { stbi_image_free(p); }
};

// Decodes `path` into `out` (channels x size x size, planar) or returns why it cannot (empty on
// success).
std::string decode_one(const std::string& path, const ImageFolderOptions& o, uint8_t* out) {
  std::vector<unsigned char> bytes;
  if (std::string error = read_file(path, bytes); !error.empty()) return error;
  const int length = static_cast<int>(bytes.size());
  // Two bugs of stb_image 2.27 guarded against (see the checks above), before stb sees the bytes.
  if (std::string error = check_jpeg_huffman_tables(bytes); !error.empty()) return error;
  if (std::string error = check_png_chunk_lengths(bytes); !error.empty()) return error;

  // The header first: a 30000 x 30000 PNG is 12 bytes of header and 2.7 GB of pixels.
  int w = 0, h = 0, file_channels = 0;
  if (!stbi_info_from_memory(bytes.data(), length, &w, &h, &file_channels)) {
    return std::string("not a JPEG, PNG or BMP image (stb_image: ") + stbi_failure_reason() + ")";
  }
  // stb reads a BMP of height 0 as an image without pixels; the crop and resize below need one.
  if (w < 1 || h < 1) return "an image of " + std::to_string(w) + " x " + std::to_string(h) + " pixels (none)";
  const int64_t pixels = static_cast<int64_t>(w) * h;
  if (pixels > o.max_pixels) {
    return std::to_string(w) + " x " + std::to_string(h) + " = " + std::to_string(pixels) +
           " pixels, more than max_pixels = " + std::to_string(o.max_pixels);
  }

  // stb converts to the channel count we ask for: gray from RGB by its luma weights, alpha dropped,
  // 16-bit PNGs to 8 bits.
  const int c = static_cast<int>(o.channels);
  std::unique_ptr<stbi_uc, StbFree> decoded(stbi_load_from_memory(bytes.data(), length, &w, &h, &file_channels, c));
  if (!decoded) return std::string("cannot decode it (stb_image: ") + stbi_failure_reason() + ")";
  if (w < 1 || h < 1 || static_cast<int64_t>(w) * h > pixels) {  // not what the header said
    return "decoded as " + std::to_string(w) + " x " + std::to_string(h) + " pixels, not the header's size";
  }

  // Center crop: the largest centered square. Rather than copying it out, point stb_image_resize at
  // its top-left pixel and give the full row stride; its edge clamping then stays inside the square.
  const int side = std::min(w, h);
  const int x0 = (w - side) / 2, y0 = (h - side) / 2;
  const stbi_uc* square = decoded.get() + (static_cast<int64_t>(y0) * w + x0) * c;
  const int stride = w * c;

  const int size = static_cast<int>(o.size);
  std::vector<uint8_t> resized(static_cast<size_t>(size) * size * c);  // (size, size, c) interleaved
  if (side == size) {
    for (int y = 0; y < size; ++y) {
      std::memcpy(&resized[static_cast<size_t>(y) * size * c], square + static_cast<int64_t>(y) * stride, size * c);
    }
  } else {
    // Triangle filter: bilinear when enlarging; when shrinking its support widens with the ratio, so
    // every input pixel contributes (PIL's antialiased bilinear, what torchvision's Resize does).
    // Linear colorspace: filter the stored values as they are, as PIL does, so our images match
    // the ones a PyTorch pipeline would see.
    if (!stbir_resize_uint8_generic(square, side, side, stride, resized.data(), size, size, size * c, c,
                                    STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_CLAMP, STBIR_FILTER_TRIANGLE,
                                    STBIR_COLORSPACE_LINEAR, nullptr)) {
      return "stb_image_resize failed (out of memory?)";
    }
  }
  // Interleaved (H, W, C) to the data set's planar (C, H, W).
  const int64_t plane = static_cast<int64_t>(size) * size;
  for (int64_t p = 0; p < plane; ++p) {
    for (int ch = 0; ch < c; ++ch) out[ch * plane + p] = resized[p * c + ch];
  }
  return "";
}

void check_options(const ImageFolderOptions& o) {
  if (o.size < 1 || o.size > 4096) {
    throw std::invalid_argument("image folder: size must be 1..4096 pixels, got " + std::to_string(o.size));
  }
  if (o.channels != 1 && o.channels != 3) {
    throw std::invalid_argument("image folder: channels must be 1 (gray) or 3 (RGB), got " +
                                std::to_string(o.channels));
  }
  if (o.max_pixels < 1) {
    throw std::invalid_argument("image folder: max_pixels must be positive, got " + std::to_string(o.max_pixels));
  }
}

}  // namespace

bool has_image_extension(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png" || ext == ".bmp";
}

bool folder_has_images(const std::string& dir) {
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec);
  for (const fs::recursive_directory_iterator end; !ec && it != end; it.increment(ec)) {
    std::error_code ignored;
    if (is_hidden(it->path())) {
      if (it->is_directory(ignored)) it.disable_recursion_pending();
    } else if (it->is_regular_file(ignored) && has_image_extension(it->path().filename().string())) {
      return true;
    }
  }
  return false;
}

Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& o, ImageFolderReport* report) {
  check_options(o);
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::exists(root, ec)) throw DatasetNotFound("image folder '" + dir + "' does not exist");
  if (!fs::is_directory(root, ec)) throw DatasetNotFound("image folder '" + dir + "' is not a folder");

  Dataset ds;
  ds.name = dir;
  std::vector<std::string> files;
  std::vector<int32_t> labels;
  if (o.labels_from_subfolders) {
    ds.class_names = list_subfolders(root);
    if (ds.class_names.empty()) {
      throw DatasetNotFound("image folder '" + dir + "': no class subfolders in it (labels come from subfolders)");
    }
    for (size_t k = 0; k < ds.class_names.size(); ++k) {
      const std::vector<std::string> class_files = list_images(root / ds.class_names[k]);
      // An empty class would still own a label no image carries; a stray folder is more likely.
      if (class_files.empty()) {
        throw DatasetNotFound("image folder '" + dir + "': class folder '" + ds.class_names[k] +
                              "' holds no .jpg, .jpeg, .png or .bmp files");
      }
      files.insert(files.end(), class_files.begin(), class_files.end());
      labels.insert(labels.end(), class_files.size(), static_cast<int32_t>(k));
    }
  } else {
    files = list_images(root);
  }
  if (files.empty()) {
    throw DatasetNotFound("image folder '" + dir + "': no .jpg, .jpeg, .png or .bmp files in it or below");
  }

  // Decode every file into its own slot, in parallel: files are independent and decoding dominates.
  // Which files fail does not depend on the schedule, so the result is the same on any thread count.
  const int64_t n = static_cast<int64_t>(files.size());
  const int64_t image_bytes = o.channels * o.size * o.size;
  ds.images.resize(static_cast<size_t>(n * image_bytes));
  std::vector<std::string> errors(files.size());
  // Under Fail, files after the first failure seen so far need not be decoded; files before it
  // still are, so the error reported is always the first broken file in order.
  std::atomic<int64_t> first_failure{n};
#pragma omp parallel for schedule(dynamic, 4)
  for (int64_t i = 0; i < n; ++i) {
    if (o.on_error == OnImageError::Fail && i > first_failure.load()) continue;
    try {
      errors[i] = decode_one(files[i], o, ds.images.data() + i * image_bytes);
    } catch (const std::exception& e) {  // std::bad_alloc from a vector: the file's error, not a crash
      errors[i] = e.what();
    }
    if (!errors[i].empty()) {
      int64_t seen = first_failure.load();
      while (i < seen && !first_failure.compare_exchange_weak(seen, i)) {
      }
    }
  }

  if (o.on_error == OnImageError::Fail && first_failure.load() < n) {
    const int64_t i = first_failure.load();
    throw std::runtime_error("image folder '" + dir + "': " + files[i] + ": " + errors[i]);
  }

  // Skip: move the good images down over the bad ones, keeping file order.
  std::vector<std::string> skipped;
  int64_t kept = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!errors[i].empty()) {
      skipped.push_back(files[i] + ": " + errors[i]);
      continue;
    }
    if (kept != i) {
      std::memmove(ds.images.data() + kept * image_bytes, ds.images.data() + i * image_bytes, image_bytes);
    }
    if (!labels.empty()) labels[kept] = labels[i];
    ++kept;
  }
  if (report) {
    report->found = n;
    report->skipped = skipped;
  }
  if (kept == 0) {
    throw std::runtime_error("image folder '" + dir + "': none of its " + std::to_string(n) +
                             " image files could be read (first: " + skipped.front() + ")");
  }
  if (!skipped.empty()) {
    std::fprintf(stderr,
                 "latentlab: warning: image folder '%s': skipped %zu of %lld files that could not be used "
                 "(first: %s)\n",
                 dir.c_str(), skipped.size(), static_cast<long long>(n), skipped.front().c_str());
  }

  ds.n = kept;
  ds.channels = o.channels;
  ds.height = ds.width = o.size;
  ds.images.resize(static_cast<size_t>(kept * image_bytes));
  ds.images.shrink_to_fit();
  if (!labels.empty()) {
    labels.resize(static_cast<size_t>(kept));
    ds.labels = std::move(labels);
  }
  return ds;
}

Dataset load_image_folder(const std::string& dir, Split split, int64_t size) {
  const fs::path root(dir);
  std::error_code ec;
  const bool has_train = fs::is_directory(root / "train", ec), has_test = fs::is_directory(root / "test", ec);
  fs::path chosen = root;
  if (has_train || has_test) {
    const bool want_train = split == Split::Train;
    chosen = root / ((want_train && has_train) || !has_test ? "train" : "test");
  }
  ImageFolderOptions o;  // RGB, skip broken files
  o.size = size;
  o.labels_from_subfolders =
      fs::is_directory(chosen, ec) && !has_direct_images(chosen) && !list_subfolders(chosen).empty();
  Dataset ds = load_image_folder(chosen.string(), o);
  ds.name = dir;
  return ds;
}

}  // namespace ll::data
