// safetensors.h: latentlab's checkpoint files, in the safetensors format, so that a file written here
// loads in PyTorch (safetensors.torch.load_file) and a file written by PyTorch loads here.
//
// The format, as its public specification describes it:
//
//   [8 bytes]  N, the length of the header, an unsigned 64-bit little-endian integer.
//   [N bytes]  the header: UTF-8 JSON text of one object. Each key is a tensor name mapping to
//                {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}
//              where begin/end are byte offsets into the byte buffer that follows the header (not
//              into the file). One optional key, "__metadata__", maps to an object of
//              string -> string (free-form: we keep the model's config there). The text starts with
//              '{' and may be padded at its end with spaces (0x20), which writers use to make the
//              byte buffer start on an 8-byte boundary of the file.
//   [rest]     the byte buffer: each tensor's elements, little-endian, row-major (C order), with
//              no gaps between tensors and no bytes that belong to no tensor.
//
// A shape [] is a scalar (one element); a shape with a 0 dimension is an empty tensor whose
// data_offsets have begin == end.
//
// In memory every tensor is float32 whatever its stored dtype: reading converts (integers and
// doubles round to the nearest float; BOOL reads as 0 or 1), writing stores F32 as is and I64 as
// llround(value). I64 exists for writing so that BatchNorm's num_batches_tracked reaches PyTorch
// as the int64 it expects there.
//
// Reading validates the whole file before trusting any number in it (see load_safetensors), since a
// checkpoint may come from anywhere: a truncated download, another tool, a hand edit.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace ll::io {

// The element types of the format, by their safetensors names. All are readable; F32 and I64 are
// writable.
enum class DType { F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL };

// "F32", "BF16", ...: the name the header uses.
const char* dtype_name(DType dtype);
// Bytes per element in the file.
std::size_t dtype_size(DType dtype);

struct StoredTensor {
  DType dtype = DType::F32;   // the type in the file: what was read, or what to write
  std::vector<int64_t> shape; // [] is a scalar
  std::vector<float> data;    // product(shape) values, row-major, always float32 in memory
};

struct Checkpoint {
  std::map<std::string, std::string> metadata;    // the header's "__metadata__"
  std::map<std::string, StoredTensor> tensors;    // name -> tensor, e.g. "main.0.weight"
};

// A file that is not valid safetensors, or holds something latentlab does not read. The message
// names the file, the tensor when there is one, and the numbers that disagree.
class FormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Writes `ckpt` to `path` atomically: the bytes go to `path + ".tmp.<pid>"`, which is flushed to
// disk (fsync) and then renamed over `path`, so a crash or a full disk leaves either the old file or
// the new one, never half of one. Tensors are written in name order, and the header is padded with
// spaces so that the byte buffer starts at a multiple of 8 bytes.
// Throws std::invalid_argument when the checkpoint cannot be written as given (a dtype other than
// F32/I64, data.size() != product(shape), a negative dimension, an I64 value that is not finite or
// out of range, the reserved name "__metadata__", text that is not UTF-8), before any file is
// touched; throws std::runtime_error naming the path and the system's reason when I/O fails.
void save_safetensors(const std::string& path, const Checkpoint& ckpt);

// Reads the whole file into memory (checkpoints here are megabytes) and parses it.
// Throws std::runtime_error when the file cannot be opened or read, FormatError when its contents
// are not a valid safetensors file that latentlab reads.
Checkpoint load_safetensors(const std::string& path);

// The two halves of the above without the file system, for tests and for callers that hold the
// bytes already. `source` names the bytes in error messages (a path, "<memory>").
std::vector<uint8_t> serialize_safetensors(const Checkpoint& ckpt);
Checkpoint parse_safetensors(std::span<const uint8_t> bytes, const std::string& source);

}  // namespace ll::io
