// fuzz_idx_gz.cpp: gzip-compressed IDX files (data/idx.h). The file's name ends in ".gz", so
// read_idx inflates it through zlib whatever it holds, then parse_idx reads the result and
// ll::data::load_dataset turns the array into images. Documented errors: std::runtime_error (and its
// subclass DatasetNotFound); anything else (another exception, a sanitizer report, a broken
// invariant) is a finding.
//
// Mutated deflate data almost never survives gzip's CRC, so the input is used two ways:
//   starts with the gzip magic 1f 8b   written as it is: zlib's side (truncated streams, several
//                                      members, garbage after a member, bad headers and checksums)
//   anything else                      compressed here first (in two gzip members when its length is
//                                      odd, as `cat a.gz b.gz` makes them), so that the mutations
//                                      reach parse_idx through the inflating path
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <vector>

#include "data/dataset.h"
#include "fuzz/common.h"

namespace {

void append_gzip_member(std::vector<uint8_t>& out, const uint8_t* data, size_t size) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
  const size_t start = out.size();
  out.resize(start + deflateBound(&zs, size));
  zs.next_in = const_cast<Bytef*>(data);
  zs.avail_in = static_cast<uInt>(size);
  zs.next_out = out.data() + start;
  zs.avail_out = static_cast<uInt>(out.size() - start);
  if (deflate(&zs, Z_FINISH) != Z_STREAM_END) std::abort();
  out.resize(start + zs.total_out);
  deflateEnd(&zs);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path;
  if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) {
    path = ll::fuzz::write_scratch_file("images-idx3-ubyte.gz", data, size);
  } else {
    std::vector<uint8_t> gz;
    const size_t first = size % 2 == 1 ? size / 2 : size;
    append_gzip_member(gz, data, first);
    if (first < size) append_gzip_member(gz, data + first, size - first);
    path = ll::fuzz::write_scratch_file("images-idx3-ubyte.gz", gz.data(), gz.size());
  }
  try {
    const ll::data::Dataset ds = ll::data::load_dataset(path, ll::data::Split::Train);
    if (ds.n < 1 || ds.image_size() < 1 || ds.images.size() != static_cast<size_t>(ds.n * ds.image_size())) {
      std::abort();
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
