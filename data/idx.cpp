// idx.cpp: reading and writing IDX files (see idx.h for the format).
//
// The whole file is read into memory (and inflated there when gzipped) before it is parsed: the
// largest file latentlab reads, Fashion-MNIST's training images, is 47 MB inflated. Every size that
// comes from the file is checked against kMaxIdxBytes before anything is allocated from it, so a
// corrupt or hostile header cannot make us allocate or read gigabytes.
#include "data/idx.h"

#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace ll::data {
namespace {

// The most bytes an IDX file may hold (inflated). Twenty times Fashion-MNIST's training set.
constexpr uint64_t kMaxIdxBytes = uint64_t{1} << 30;
constexpr int kMaxDims = 4;
constexpr uint8_t kTypeUnsignedByte = 0x08;

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw std::runtime_error("IDX file '" + source + "': " + what);
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string hex_byte(uint8_t b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", b);
  return buf;
}

std::string dims_string(const std::vector<int64_t>& dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + ")";
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(path, std::string("cannot open: ") + std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t chunk[1 << 16];
  size_t n;
  // Reading in chunks (rather than asking for the size first) also works for pipes and /proc files,
  // and stops as soon as the file grows past the limit.
  while ((n = std::fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (bytes.size() + n > kMaxIdxBytes) {
      std::fclose(f);
      fail(path, "file is larger than the " + std::to_string(kMaxIdxBytes >> 20) + " MiB limit");
    }
    bytes.insert(bytes.end(), chunk, chunk + n);
  }
  const bool error = std::ferror(f);
  std::fclose(f);
  if (error) fail(path, "read error");
  return bytes;
}

// Inflates gzip data in memory. A .gz file may hold several gzip members back to back (gzip's own
// `cat a.gz b.gz` concatenation); they are inflated one after the other, as gunzip does.
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& source) {
  std::vector<uint8_t> out;
  z_stream zs{};
  // 15 + 32: the largest window, and let zlib detect the gzip (or zlib) header itself.
  if (inflateInit2(&zs, 15 + 32) != Z_OK) fail(source, "cannot initialize zlib");
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());  // read_file bounds the size to 1 GiB < 4 GiB
  uint8_t chunk[1 << 16];
  for (;;) {
    zs.next_out = chunk;
    zs.avail_out = sizeof chunk;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    const size_t produced = sizeof chunk - zs.avail_out;
    if (out.size() + produced > kMaxIdxBytes) {
      inflateEnd(&zs);
      fail(source, "inflates to more than the " + std::to_string(kMaxIdxBytes >> 20) + " MiB limit");
    }
    out.insert(out.end(), chunk, chunk + produced);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      // Another member follows, or garbage: inflateReset restarts header detection, so garbage
      // fails below with Z_DATA_ERROR ("incorrect header check").
      inflateReset(&zs);
      continue;
    }
    // With fresh output space every call, Z_BUF_ERROR means inflate needs input that is not there.
    if (rc == Z_BUF_ERROR) {
      inflateEnd(&zs);
      fail(source, "truncated gzip data (the compressed stream ends early)");
    }
    if (rc != Z_OK) {
      const std::string msg = zs.msg ? zs.msg : "error " + std::to_string(rc);
      inflateEnd(&zs);
      fail(source, "not valid gzip data (zlib: " + msg + ")");
    }
  }
  inflateEnd(&zs);
  return out;
}

std::vector<uint8_t> gzip(const std::vector<uint8_t>& in, const std::string& path) {
  z_stream zs{};
  // 15 + 16: the largest window and a gzip (not zlib) wrapper, so `gunzip` and `zcat` read the file.
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    fail(path, "cannot initialize zlib");
  }
  std::vector<uint8_t> out(deflateBound(&zs, in.size()));
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());  // write_idx bounds the size to 1 GiB
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);  // deflateBound guarantees one call suffices
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) fail(path, "gzip compression failed (zlib error " + std::to_string(rc) + ")");
  return out;
}

// Writes bytes to `path` through `path.tmp.<pid>` renamed into place, so that a reader never sees
// a half-written file and a crash leaves the previous file (if any) intact.
void write_file_atomically(const std::string& path, const std::vector<uint8_t>& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(path, "cannot create '" + tmp + "': " + std::strerror(errno));
  const bool written = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const int saved_errno = errno;
  if (std::fclose(f) != 0 || !written) {
    std::remove(tmp.c_str());
    fail(path, "cannot write '" + tmp + "': " + std::strerror(written ? errno : saved_errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    fail(path, "cannot rename '" + tmp + "' into place: " + std::strerror(e));
  }
}

// Whether the sizes fit the limits: each in 0..2^32-1, and the product of the nonzero ones at most
// kMaxIdxBytes. Sets `count` to the element count (0 when a size is 0) when they fit.
bool sizes_fit(const std::vector<int64_t>& dims, uint64_t& count) {
  uint64_t nonzero = 1;
  bool empty = false;
  for (const int64_t d : dims) {
    if (d < 0 || d > std::numeric_limits<uint32_t>::max()) return false;
    if (d == 0) {
      empty = true;
      continue;
    }
    nonzero *= static_cast<uint64_t>(d);  // < 2^32 times <= 2^30: no overflow
    if (nonzero > kMaxIdxBytes) return false;
  }
  count = empty ? 0 : nonzero;
  return true;
}

bool has_zero(const std::vector<int64_t>& dims) {
  for (const int64_t d : dims) {
    if (d == 0) return true;
  }
  return false;
}

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

void append_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

}  // namespace

IdxArray parse_idx(const std::vector<uint8_t>& bytes, const std::string& source) {
  const uint64_t size = bytes.size();
  if (size < 4) {
    fail(source, "truncated header: " + std::to_string(size) + " bytes, an IDX header needs at least 4");
  }
  if (bytes[0] != 0 || bytes[1] != 0) {
    fail(source, "bad magic: first bytes are " + hex_byte(bytes[0]) + " " + hex_byte(bytes[1]) +
                     ", an IDX file starts with 0x00 0x00 (not an IDX file?)");
  }
  if (bytes[2] != kTypeUnsignedByte) {
    fail(source, "unsupported element type " + hex_byte(bytes[2]) + " (only 0x08, unsigned byte, is supported)");
  }
  const int ndim = bytes[3];
  if (ndim < 1 || ndim > kMaxDims) {
    fail(source, "has " + std::to_string(ndim) + " dimensions, expected 1 to " + std::to_string(kMaxDims));
  }
  const uint64_t header = 4 + 4 * static_cast<uint64_t>(ndim);
  if (size < header) {
    fail(source, "truncated header: " + std::to_string(size) + " bytes, the header of a " +
                     std::to_string(ndim) + "-dimensional array needs " + std::to_string(header));
  }

  IdxArray array;
  for (int d = 0; d < ndim; ++d) array.dims.push_back(read_be32(&bytes[4 + 4 * d]));
  // The product of the nonzero sizes is bounded, not only the element count: an array with a size
  // of 0 holds nothing, but its other sizes still reach code that multiplies them in int64 in an
  // order of its own (a data set's C * H * W), where (1, 4294967295, 4294967295, 0) would overflow.
  uint64_t count = 0;
  if (!sizes_fit(array.dims, count)) {
    fail(source, "dimensions " + dims_string(array.dims) + " promise more than the " +
                     std::to_string(kMaxIdxBytes >> 20) + " MiB limit" +
                     (has_zero(array.dims) ? " (their sizes other than 0 multiply past it)" : ""));
  }
  const uint64_t have = size - header;
  if (have < count) {
    fail(source, "truncated: header " + dims_string(array.dims) + " promises " + std::to_string(count) +
                     " bytes of data, file has " + std::to_string(have));
  }
  if (have > count) {
    fail(source, "trailing bytes: header " + dims_string(array.dims) + " promises " + std::to_string(count) +
                     " bytes of data, file has " + std::to_string(have) + " (" +
                     std::to_string(have - count) + " extra)");
  }
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header), bytes.end());
  return array;
}

IdxArray read_idx(const std::string& path) {
  std::vector<uint8_t> bytes = read_file(path);
  // The gzip magic is checked as well as the name: a renamed .gz file still reads, and an IDX file
  // can never start with 1f 8b (its magic is 00 00).
  const bool gzipped = ends_with(path, ".gz") || (bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b);
  if (gzipped) bytes = gunzip(bytes, path);
  return parse_idx(bytes, path);
}

void write_idx(const std::string& path, const IdxArray& array) {
  const int ndim = static_cast<int>(array.dims.size());
  if (ndim < 1 || ndim > kMaxDims) {
    fail(path, "cannot write " + std::to_string(ndim) + " dimensions, expected 1 to " + std::to_string(kMaxDims));
  }
  for (const int64_t d : array.dims) {
    if (d < 0 || d > std::numeric_limits<uint32_t>::max()) {
      fail(path, "cannot write dimensions " + dims_string(array.dims) + ": each must be in 0..2^32-1");
    }
  }
  uint64_t count = 0;
  if (!sizes_fit(array.dims, count)) {  // what parse_idx would refuse
    fail(path, "cannot write dimensions " + dims_string(array.dims) + ": more than the " +
                   std::to_string(kMaxIdxBytes >> 20) + " MiB limit");
  }
  if (array.data.size() != count) {
    fail(path, "cannot write: dimensions " + dims_string(array.dims) + " need " + std::to_string(count) +
                   " bytes, the array holds " + std::to_string(array.data.size()));
  }

  std::vector<uint8_t> bytes = {0, 0, kTypeUnsignedByte, static_cast<uint8_t>(ndim)};
  for (const int64_t d : array.dims) append_be32(bytes, static_cast<uint32_t>(d));
  bytes.insert(bytes.end(), array.data.begin(), array.data.end());
  if (ends_with(path, ".gz")) bytes = gzip(bytes, path);
  write_file_atomically(path, bytes);
}

}  // namespace ll::data
