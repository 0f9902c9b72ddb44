// idx.h: the IDX file format of MNIST and Fashion-MNIST (LeCun et al.,
// http://yann.lecun.com/exdb/mnist/), optionally gzip-compressed.
//
//   bytes 0-1   0x00 0x00
//   byte  2     element type: 0x08 unsigned byte (the only type latentlab reads or writes)
//   byte  3     number of dimensions d (1..4 here)
//   then d      big-endian uint32 sizes
//   then        prod(sizes) elements, row-major
//
// Files ending in ".gz" (or starting with the gzip magic 1f 8b) are inflated through zlib first.
// Everything is validated before use: magic, type, dimension count, sizes (a size may be 0; the
// product of the other sizes, like the inflated file, is bounded by 1 GiB, so that any product of
// sizes fits in int64), and that the file holds exactly the data the header promises. Errors throw std::runtime_error with the file name and what is wrong
// ("IDX file 'x.gz': truncated: header (60000, 28, 28) promises 47040000 bytes of data, file has 1200").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ll::data {

struct IdxArray {
  std::vector<int64_t> dims;   // e.g. (60000, 28, 28) for images, (60000) for labels
  std::vector<uint8_t> data;   // prod(dims) values
};

IdxArray read_idx(const std::string& path);
// Parses bytes already in memory (inflated); `source` names them in errors.
IdxArray parse_idx(const std::vector<uint8_t>& bytes, const std::string& source);
// Writes an uncompressed IDX file (gzip when the name ends in ".gz"), through a temporary file
// renamed into place.
void write_idx(const std::string& path, const IdxArray& array);

}  // namespace ll::data
