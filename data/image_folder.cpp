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

#include <zlib.h>

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

// Two bugs of stb_image 2.27 (Debian 12's libstb-dev) in JPEG Huffman tables, both fixed upstream in
// 2.28, refused here before stb sees the bytes:
//   - a DHT segment whose 16 code counts add up to more than 256 makes it write past the table's
//     arrays (stbi__build_huffman's size[257], then values[256]), in stbi_info already;
//   - a scan that decodes with a table no DHT segment defined reads that table from memory stb never
//     initialized (2.28 zeroes it), and indexes its values with whatever is there: an out-of-bounds
//     read. Which tables a scan decodes with is stb's rule: a baseline scan both of each component's
//     tables; a progressive scan its DC table when it is a first DC scan (Ss = 0, Ah = 0), its AC
//     table when it is an AC scan (Ss > 0), none when it refines DC.
// The walk follows the segments as stb reads them: in marker context segments are skipped by their
// length (junk between them byte by byte, as stb does before the frame header); after a start of
// scan, entropy-coded data runs to the first FF xx that is neither a stuffed FF (FF 00) nor a restart
// marker (FF D0..D7), fill bytes (FF FF) included. Tables and scan headers are read as stb reads
// them, even past their segment's end (zeros past the end of the file). It checks more places than
// stb may reach (such as a marker stb would never get to), never fewer; a valid JPEG defines every
// table it uses with at most 256 codes, so only broken files are refused. Returns why the file is
// refused, or "" (also for files that are not JPEGs).
std::string check_jpeg_huffman_tables(const std::vector<unsigned char>& bytes) {
  const size_t n = bytes.size();
  auto at = [&](size_t i) -> unsigned { return i < n ? bytes[i] : 0u; };
  // The start-of-image marker FF D8, fill bytes allowed before the D8 as before any marker.
  if (n < 2 || bytes[0] != 0xFF) return "";
  size_t i = 1;
  while (i < n && bytes[i] == 0xFF) ++i;
  if (i >= n || bytes[i] != 0xD8) return "";  // not a JPEG
  ++i;
  bool entropy = false, progressive = false;
  bool defined[2][4] = {};  // [DC = 0, AC = 1][table 0..3]
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
    if (marker == 0xD9) return "";                                                      // end of image
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;  // no length
    const size_t segment = i - 2, length = at(i) << 8 | at(i + 1);  // the length counts its own 2 bytes
    if (marker == 0xC0 || marker == 0xC1 || marker == 0xC2) progressive = marker == 0xC2;  // the frame
    if (marker == 0xC4) {
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
        defined[table >> 4][table & 15] = true;
        left -= static_cast<int64_t>(17 + codes);
        k += 17 + codes;
      }
    }
    if (marker == 0xDA) {  // start of scan: its header, then entropy-coded data
      const unsigned components = at(i + 2);
      const size_t after = i + 3 + 2 * static_cast<size_t>(components);
      const unsigned ss = at(after), ah = at(after + 2) >> 4;
      const bool uses_dc = !progressive || (ss == 0 && ah == 0), uses_ac = !progressive || ss != 0;
      for (unsigned c = 0; c < components && c < 4; ++c) {
        const unsigned dc = at(i + 4 + 2 * c) >> 4, ac = at(i + 4 + 2 * c) & 15;
        if (dc > 3 || ac > 3) break;  // stb refuses the scan itself
        const int missing = uses_dc && !defined[0][dc] ? 0 : uses_ac && !defined[1][ac] ? 1 : -1;
        if (missing >= 0) {
          return "corrupt JPEG: the scan at byte " + std::to_string(segment) + " decodes with the " +
                 (missing == 0 ? "DC Huffman table " + std::to_string(dc) : "AC Huffman table " + std::to_string(ac)) +
                 ", which no DHT segment before it defines";
        }
      }
      entropy = true;
    }
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

// stb_image 2.27 inflates a PNG's image data (the IDAT chunks, one zlib stream) into a buffer that it
// doubles for as long as the stream goes on, up to 4 GiB, although it then uses only the bytes the
// header's size needs: deflate packs a run of zeros about 1000:1, so a 4 MB file could make it
// allocate 4 GB. This inflates the stream first with zlib into a small scratch buffer, counting, and
// refuses a stream that holds more than twice what the header's size needs plus 1 MiB (a real PNG
// holds exactly what it needs: rows of filter byte + pixels, Adam7's passes adding at most a few bytes
// per row). A stream zlib cannot inflate is left to stb, which refuses it itself. Apple's CgBI
// variant carries raw deflate, without the zlib header, as stb reads it. Called after the header's
// size has passed max_pixels; the chunk lengths are known to fit in the file
// (check_png_chunk_lengths). Returns why the file is refused, or "" (also for non-PNGs).
std::string check_png_inflated_size(const std::vector<unsigned char>& bytes) {
  static constexpr unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  const size_t n = bytes.size();
  if (n < 8 || std::memcmp(bytes.data(), kSignature, 8) != 0) return "";
  auto be32 = [&](size_t i) {
    return uint64_t{bytes[i]} << 24 | uint64_t{bytes[i + 1]} << 16 | uint64_t{bytes[i + 2]} << 8 | uint64_t{bytes[i + 3]};
  };
  uint64_t needed = 0;  // what stb needs from the stream: rows of one filter byte + packed pixels
  bool cgbi = false, header = false;
  z_stream z{};
  bool started = false;
  std::vector<unsigned char> scratch(64 * 1024);
  uint64_t inflated = 0, limit = 0;
  std::string verdict;
  for (size_t i = 8; i + 8 <= n;) {
    const uint64_t length = be32(i);
    if (length > n - (i + 8)) break;  // (refused before, by check_png_chunk_lengths)
    const std::string type(bytes.begin() + static_cast<std::ptrdiff_t>(i + 4), bytes.begin() + static_cast<std::ptrdiff_t>(i + 8));
    const size_t data = i + 8;
    if (type == "CgBI") cgbi = true;
    if (type == "IHDR" && length >= 13) {
      const uint64_t w = be32(data), h = be32(data + 4), depth = bytes[data + 8], color = bytes[data + 9];
      const uint64_t channels = color == 0 ? 1 : color == 2 ? 3 : color == 3 ? 1 : color == 4 ? 2 : color == 6 ? 4 : 0;
      if (channels == 0 || depth == 0 || depth > 16 || w > (1u << 24) || h > (1u << 24)) return "";  // stb's to refuse
      needed = h * ((w * channels * depth + 7) / 8 + 1);
      limit = 2 * needed + (uint64_t{1} << 20);
      header = true;
    }
    if (type == "IDAT" && header) {
      if (!started) {
        if (inflateInit2(&z, cgbi ? -MAX_WBITS : MAX_WBITS) != Z_OK) return "";
        started = true;
      }
      z.next_in = const_cast<Bytef*>(bytes.data() + data);
      z.avail_in = static_cast<uInt>(length);
      int status = Z_OK;
      do {  // until this chunk's bytes are in and zlib holds no more output for them
        z.next_out = scratch.data();
        z.avail_out = static_cast<uInt>(scratch.size());
        status = inflate(&z, Z_NO_FLUSH);
        inflated += scratch.size() - z.avail_out;
        if (inflated > limit) {
          verdict = "corrupt PNG: its image data inflates to more than " + std::to_string(limit) + " bytes, while its " +
                    "header's size needs " + std::to_string(needed) + " (a decompression bomb, or a damaged file)";
          break;
        }
        if (status == Z_BUF_ERROR) status = Z_OK;  // no progress possible: the next chunk's bytes are needed
      } while (status == Z_OK && (z.avail_in > 0 || z.avail_out == 0));
      if (!verdict.empty() || status != Z_OK) break;  // refused, the stream's end, or an error stb will report
    }
    if (type == "IEND") break;
    i += 12 + length;  // header, data, CRC
  }
  if (started) inflateEnd(&z);
  return verdict;
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
  if (std::string error = check_png_inflated_size(bytes); !error.empty()) return error;

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
