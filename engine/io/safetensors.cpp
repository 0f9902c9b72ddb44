// safetensors.cpp: reading and writing checkpoint files; the format is described in safetensors.h.
//
// Reading is written for hostile input: every number in the header is checked against the file's
// real size before it is used as an offset or a size, and nothing is allocated from a header number
// until the whole layout is known to fit in the bytes we hold. Each check fails with its own
// message, naming the file, the tensor and the numbers, because "invalid checkpoint" alone sends
// the user to a hex editor.
#include "engine/io/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include <nlohmann/json.hpp>

namespace ll::io {
namespace {

using nlohmann::json;

// The reference implementation refuses headers above 100 MB; we refuse above 100 MiB. Without a
// bound, a corrupt length field would make us parse (or a writer allocate) gigabytes of "JSON".
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;
constexpr const char* kMetadataKey = "__metadata__";

// Buffer alignment for writing: 8 bytes is what the reference writer uses, and enough for every
// element type, so a reader that maps the file can use the data in place.
constexpr uint64_t kAlignment = 8;

struct DTypeInfo {
  DType dtype;
  const char* name;
  std::size_t size;
};
constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "F32", 4}, {DType::F64, "F64", 8}, {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2}, {DType::I64, "I64", 8}, {DType::I32, "I32", 4},
    {DType::I16, "I16", 2}, {DType::I8, "I8", 1},   {DType::U8, "U8", 1},
    {DType::BOOL, "BOOL", 1},
};

const DTypeInfo& info(DType dtype) {
  for (const DTypeInfo& d : kDTypes) {
    if (d.dtype == dtype) return d;
  }
  throw std::invalid_argument("safetensors: invalid DType value " +
                              std::to_string(static_cast<int>(dtype)));
}

std::string readable_dtype_list() {
  std::string s;
  for (const DTypeInfo& d : kDTypes) {
    if (!s.empty()) s += ", ";
    s += d.name;
  }
  return s;
}

// The format is little-endian whatever the host is, so values are assembled byte by byte;
// compilers turn these loops into one load/store on little-endian machines.
template <typename U>
U load_le(const uint8_t* p) {
  U v = 0;
  for (std::size_t i = 0; i < sizeof(U); ++i) v |= static_cast<U>(static_cast<U>(p[i]) << (8 * i));
  return v;
}

template <typename U>
void store_le(uint8_t* p, U v) {
  for (std::size_t i = 0; i < sizeof(U); ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// IEEE binary16 -> binary32. Every half value is exactly representable as a float, so this is a
// re-encoding of the bits, never a rounding.
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  uint32_t mantissa = h & 0x3FFu;
  uint32_t bits = 0;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // inf, or NaN keeping its payload
  } else if (exponent != 0) {
    bits = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;  // +0 or -0
  } else {
    // Subnormal half: 0.mantissa * 2^-14. Floats have a wider exponent range, so it becomes a
    // normal float: shift the mantissa up to its leading 1 and lower the exponent to match.
    int e = -14;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --e;
    }
    bits = sign | (static_cast<uint32_t>(e + 127) << 23) | ((mantissa & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

// bfloat16 is the top half of a float32, so widening is a shift (inf/NaN/subnormals included).
float bf16_to_float(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

// "[2, 3]". (Built with += throughout: GCC 12 gives a false -Wrestrict for "literal" + string&&.)
std::string list_string(const std::vector<int64_t>& values, const char* separator = ", ") {
  std::string s = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) s += separator;
    s += std::to_string(values[i]);
  }
  s += "]";
  return s;
}
std::string shape_string(const std::vector<int64_t>& shape) { return list_string(shape); }

std::string offsets_string(uint64_t begin, uint64_t end) {
  std::string s = "[";
  s += std::to_string(begin);
  s += ", ";
  s += std::to_string(end);
  s += "]";
  return s;
}

// product(shape) and product(shape) * element_size, or false if either does not fit in 64 bits.
// A shape with a 0 dimension is empty whatever its other dimensions are.
bool checked_sizes(const std::vector<int64_t>& shape, std::size_t element_size, uint64_t& count,
                   uint64_t& bytes) {
  count = 1;
  if (std::find(shape.begin(), shape.end(), int64_t{0}) != shape.end()) {
    count = 0;
  } else {
    for (int64_t d : shape) {
      if (__builtin_mul_overflow(count, static_cast<uint64_t>(d), &count)) return false;
    }
  }
  return !__builtin_mul_overflow(count, static_cast<uint64_t>(element_size), &bytes);
}

// ---- reading ----------------------------------------------------------------------------------

// Collects the errors of one file under one prefix, so every message starts the same way.
class Reader {
 public:
  explicit Reader(const std::string& source) : source_(source) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError("safetensors file '" + source_ + "': " + what);
  }
  [[noreturn]] void fail(const std::string& tensor, const std::string& what) const {
    fail("tensor '" + tensor + "': " + what);
  }

 private:
  std::string source_;
};

const char* json_type(const json& j) {
  if (j.is_number_float()) return "a non-integer number";
  if (j.is_number()) return "an integer";
  return j.type_name();  // "object", "array", "string", "boolean", "null"
}

// A non-negative JSON integer as uint64, or false (floats such as 2.0 are not integers here:
// the format's writers never produce them and accepting them would hide a broken writer).
bool get_unsigned(const json& j, uint64_t& value) {
  if (!j.is_number_unsigned()) return false;
  value = j.get<uint64_t>();
  return true;
}

// One header entry after its JSON has been checked, before its bytes are touched.
struct Entry {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t count = 0;  // elements
  uint64_t begin = 0;  // data_offsets, relative to the byte buffer
  uint64_t end = 0;
};

Entry parse_entry(const Reader& r, const std::string& name, const json& value,
                  uint64_t buffer_size) {
  Entry e;
  e.name = name;
  if (!value.is_object()) {
    r.fail(name, std::string("entry is ") + json_type(value) +
                     ", expected an object with \"dtype\", \"shape\" and \"data_offsets\"");
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!value.contains(key)) r.fail(name, std::string("missing \"") + key + "\"");
  }

  const json& dtype = value["dtype"];
  if (!dtype.is_string()) {
    r.fail(name, std::string("\"dtype\" is ") + json_type(dtype) + ", expected a string");
  }
  const std::string dtype_text = dtype.get<std::string>();
  const DTypeInfo* found = nullptr;
  for (const DTypeInfo& d : kDTypes) {
    if (dtype_text == d.name) found = &d;
  }
  if (found == nullptr) {
    r.fail("unknown dtype '" + dtype_text + "' for tensor '" + name + "'; latentlab reads " +
           readable_dtype_list());
  }
  e.dtype = found->dtype;

  const json& shape = value["shape"];
  if (!shape.is_array()) {
    r.fail(name, std::string("\"shape\" is ") + json_type(shape) + ", expected an array of integers");
  }
  for (std::size_t i = 0; i < shape.size(); ++i) {
    const json& d = shape[i];
    if (d.is_number_integer() && !d.is_number_unsigned()) {
      r.fail(name, "shape has a negative dimension " + std::to_string(d.get<int64_t>()) +
                       " at index " + std::to_string(i));
    }
    uint64_t dim = 0;
    if (!get_unsigned(d, dim)) {
      r.fail(name, "shape[" + std::to_string(i) + "] is " + json_type(d) +
                       ", expected a non-negative integer (" + d.dump() + ")");
    }
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      r.fail(name, "shape[" + std::to_string(i) + "] = " + std::to_string(dim) +
                       " does not fit in int64");
    }
    e.shape.push_back(static_cast<int64_t>(dim));
  }
  // An empty tensor (a 0 in its shape) holds nothing whatever its other sizes, but those sizes still
  // reach code that multiplies a shape out in int64 in an order of its own (the engine's Tensor), so
  // their product must fit in int64 too: [0, 2^40, 2^40] is refused, not only [2^40, 2^40, 2^40].
  uint64_t nonzero = 1;
  for (const int64_t d : e.shape) {
    if (d != 0 && (__builtin_mul_overflow(nonzero, static_cast<uint64_t>(d), &nonzero) ||
                   nonzero > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))) {
      r.fail(name, "shape " + shape_string(e.shape) + ": its sizes other than 0 multiply to a number that " +
                       "overflows 64 bits (int64)");
    }
  }

  const json& offsets = value["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2 || !get_unsigned(offsets[0], e.begin) ||
      !get_unsigned(offsets[1], e.end)) {
    r.fail(name, "\"data_offsets\" is " + offsets.dump() +
                     ", expected [begin, end] with two non-negative integers");
  }
  const std::string where = "data_offsets " + offsets_string(e.begin, e.end);
  if (e.begin > e.end) r.fail(name, where + " have begin > end");
  if (e.end > buffer_size) {
    r.fail(name, where + " end beyond the byte buffer, which has " + std::to_string(buffer_size) +
                     " bytes (truncated file?)");
  }

  uint64_t bytes = 0;
  if (!checked_sizes(e.shape, found->size, e.count, bytes)) {
    r.fail(name, "shape " + shape_string(e.shape) + " of " + found->name +
                     " has a size that overflows 64 bits");
  }
  if (bytes != e.end - e.begin) {
    r.fail(name, "size mismatch: shape " + shape_string(e.shape) + " of " + found->name + " needs " +
                     std::to_string(bytes) + " bytes but " + where + " span " +
                     std::to_string(e.end - e.begin));
  }
  return e;
}

// The format asks that tensors tile the byte buffer exactly: no two share a byte, and no byte is
// left over. (An empty tensor occupies no bytes and may sit at any boundary between tensors.)
void check_layout(const Reader& r, std::vector<const Entry*> entries, uint64_t buffer_size) {
  std::sort(entries.begin(), entries.end(), [](const Entry* a, const Entry* b) {
    return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
  });
  uint64_t covered = 0;  // the buffer is tiled up to here
  const Entry* previous = nullptr;
  for (const Entry* e : entries) {
    if (e->begin < covered) {
      r.fail("tensors '" + previous->name + "' (data_offsets " +
             offsets_string(previous->begin, previous->end) + ") and '" + e->name +
             "' (data_offsets " + offsets_string(e->begin, e->end) + ") overlap");
    }
    if (e->begin > covered) {
      r.fail("hole in the byte buffer: bytes [" + std::to_string(covered) + ", " +
             std::to_string(e->begin) + ") belong to no tensor (before tensor '" + e->name + "')");
    }
    covered = e->end;
    previous = e;
  }
  if (covered != buffer_size) {
    r.fail("hole in the byte buffer: bytes [" + std::to_string(covered) + ", " +
           std::to_string(buffer_size) + ") at its end belong to no tensor");
  }
}

std::vector<float> convert(DType dtype, const uint8_t* p, uint64_t count) {
  std::vector<float> out(count);
  // Each case is one plain loop so the conversion a reader looks for is on one line.
  switch (dtype) {
    case DType::F32:
      for (uint64_t i = 0; i < count; ++i) out[i] = std::bit_cast<float>(load_le<uint32_t>(p + 4 * i));
      break;
    case DType::F64:
      // IEEE narrowing: rounds to nearest, overflows to +-inf (static_assert below).
      for (uint64_t i = 0; i < count; ++i) {
        out[i] = static_cast<float>(std::bit_cast<double>(load_le<uint64_t>(p + 8 * i)));
      }
      break;
    case DType::F16:
      for (uint64_t i = 0; i < count; ++i) out[i] = half_to_float(load_le<uint16_t>(p + 2 * i));
      break;
    case DType::BF16:
      for (uint64_t i = 0; i < count; ++i) out[i] = bf16_to_float(load_le<uint16_t>(p + 2 * i));
      break;
    case DType::I64:
      for (uint64_t i = 0; i < count; ++i) {
        out[i] = static_cast<float>(static_cast<int64_t>(load_le<uint64_t>(p + 8 * i)));
      }
      break;
    case DType::I32:
      for (uint64_t i = 0; i < count; ++i) {
        out[i] = static_cast<float>(static_cast<int32_t>(load_le<uint32_t>(p + 4 * i)));
      }
      break;
    case DType::I16:
      for (uint64_t i = 0; i < count; ++i) {
        out[i] = static_cast<float>(static_cast<int16_t>(load_le<uint16_t>(p + 2 * i)));
      }
      break;
    case DType::I8:
      for (uint64_t i = 0; i < count; ++i) out[i] = static_cast<float>(static_cast<int8_t>(p[i]));
      break;
    case DType::U8:
      for (uint64_t i = 0; i < count; ++i) out[i] = static_cast<float>(p[i]);
      break;
    case DType::BOOL:
      // PyTorch writes 0/1; any other byte is read as true rather than as a number.
      for (uint64_t i = 0; i < count; ++i) out[i] = p[i] != 0 ? 1.0f : 0.0f;
      break;
  }
  return out;
}
static_assert(std::numeric_limits<float>::is_iec559 && std::numeric_limits<double>::is_iec559,
              "float/double must be IEEE 754 for the bit-level conversions here");

// ---- writing ----------------------------------------------------------------------------------

std::string quoted(const std::string& text) {
  try {
    return json(text).dump();  // JSON string escaping
  } catch (const json::type_error&) {
    throw std::invalid_argument("safetensors: cannot write '" + text +
                                "': names and metadata must be valid UTF-8");
  }
}

[[noreturn]] void fail_io(const std::string& path, const std::string& step, int err) {
  throw std::runtime_error("cannot write checkpoint '" + path + "': " + step + ": " +
                           std::generic_category().message(err));
}

// Test hook, for tests only (tests/apps/test_kill_resume.cpp kills a real process with it):
// LATENTLAB_TEST_SAVE_STOP="<moment>:<suffix>:<n>" makes the n-th save (from 1) of this process to
// a path ending in <suffix> stop the process with SIGSTOP at <moment>: "half" (half of the bytes
// are in the temporary file) or "rename" (the temporary file is complete and fsync'ed, and not yet
// renamed). The test then inspects the directory and kills the process there. Unset, it costs one
// getenv per save.
enum class StopMoment { None, Half, Rename };

StopMoment test_stop_moment(const std::string& path) {
  const char* spec = std::getenv("LATENTLAB_TEST_SAVE_STOP");
  if (spec == nullptr || *spec == '\0') return StopMoment::None;
  const std::string s = spec;
  const size_t a = s.find(':'), b = s.rfind(':');
  if (a == std::string::npos || b == a) return StopMoment::None;
  const std::string moment = s.substr(0, a), suffix = s.substr(a + 1, b - a - 1);
  const long n = std::strtol(s.c_str() + b + 1, nullptr, 10);
  if (path.size() < suffix.size() || path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return StopMoment::None;
  }
  static std::atomic<long> matches{0};
  if (++matches != n) return StopMoment::None;
  return moment == "half" ? StopMoment::Half : moment == "rename" ? StopMoment::Rename : StopMoment::None;
}

// Removes the temporary file unless the rename made it the checkpoint.
struct TempFile {
  std::string path;
  int fd = -1;
  bool renamed = false;
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    if (!renamed) ::unlink(path.c_str());
  }
};

}  // namespace

const char* dtype_name(DType dtype) { return info(dtype).name; }
std::size_t dtype_size(DType dtype) { return info(dtype).size; }

Checkpoint parse_safetensors(std::span<const uint8_t> bytes, const std::string& source) {
  const Reader r(source);
  const uint64_t file_size = bytes.size();
  if (file_size < 8) {
    r.fail("truncated: the file has " + std::to_string(file_size) +
           " bytes, fewer than the 8 of the header length");
  }
  const uint64_t header_size = load_le<uint64_t>(bytes.data());
  if (header_size > kMaxHeaderBytes) {
    r.fail("header length " + std::to_string(header_size) + " exceeds the limit of " +
           std::to_string(kMaxHeaderBytes) + " bytes (not a safetensors file, or corrupt)");
  }
  if (header_size > file_size - 8) {
    r.fail("truncated: header length " + std::to_string(header_size) +
           " is larger than the file after the length field (" + std::to_string(file_size - 8) +
           " bytes)");
  }
  const auto header_begin = bytes.begin() + 8;
  const auto header_end = header_begin + static_cast<std::ptrdiff_t>(header_size);
  if (header_size == 0 || *header_begin != '{') {
    r.fail("header does not start with '{' (not a safetensors file)");
  }

  // nlohmann keeps the last of two equal keys silently; a parser callback sees every key, so
  // a duplicate (two tensors with one name, an ambiguous file) can be refused instead.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  const json::parser_callback_t on_event = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end && !open_objects.empty()) {
      open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty() && duplicate.empty()) {
      const std::string key = parsed.get<std::string>();
      if (!open_objects.back().insert(key).second) duplicate = key;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(header_begin, header_end, on_event);
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number beyond a double's range (1e400), which nlohmann
    // reports while parsing too.
    r.fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!duplicate.empty()) r.fail("header has the key '" + duplicate + "' twice");
  if (!header.is_object()) r.fail("header is not a JSON object");

  const uint64_t buffer_size = file_size - 8 - header_size;
  const uint8_t* buffer = bytes.data() + 8 + header_size;

  Checkpoint ckpt;
  std::vector<Entry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey) {
      if (!value.is_object()) {
        r.fail(std::string("\"__metadata__\" is ") + json_type(value) +
               ", expected an object of strings");
      }
      for (const auto& [key, text] : value.items()) {
        if (!text.is_string()) {
          r.fail("non-string metadata: \"__metadata__\" value of '" + key + "' is " +
                 json_type(text) + " (" + text.dump() + "), expected a string");
        }
        ckpt.metadata[key] = text.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(r, name, value, buffer_size));
  }

  std::vector<const Entry*> pointers;
  for (const Entry& e : entries) pointers.push_back(&e);
  check_layout(r, pointers, buffer_size);

  // Only now, with every size known to lie inside `bytes`, is memory allocated for the data.
  for (const Entry& e : entries) {
    StoredTensor& t = ckpt.tensors[e.name];
    t.dtype = e.dtype;
    t.shape = e.shape;
    t.data = convert(e.dtype, buffer + e.begin, e.count);
  }
  return ckpt;
}

std::vector<uint8_t> serialize_safetensors(const Checkpoint& ckpt) {
  // The header is built as text rather than through a JSON object so that its key order is ours:
  // "__metadata__" first, then the tensors by name with increasing offsets, each entry's keys in
  // the order the reference writer uses.
  std::string header = "{";
  if (!ckpt.metadata.empty()) {
    header += quoted(kMetadataKey);
    header += ":{";
    bool first = true;
    for (const auto& [key, value] : ckpt.metadata) {
      if (!first) header += ",";
      header += quoted(key);
      header += ":";
      header += quoted(value);
      first = false;
    }
    header += "}";
  }

  uint64_t offset = 0;
  for (const auto& [name, t] : ckpt.tensors) {
    const std::string what = "safetensors: cannot write tensor '" + name + "': ";
    if (name == kMetadataKey) throw std::invalid_argument(what + "the name is reserved");
    if (t.dtype != DType::F32 && t.dtype != DType::I64) {
      throw std::invalid_argument(what + "dtype " + dtype_name(t.dtype) +
                                  " is not writable; latentlab writes F32 and I64");
    }
    for (int64_t d : t.shape) {
      if (d < 0) throw std::invalid_argument(what + "negative dimension in shape " + shape_string(t.shape));
    }
    uint64_t count = 0, bytes = 0;
    if (!checked_sizes(t.shape, dtype_size(t.dtype), count, bytes)) {
      throw std::invalid_argument(what + "shape " + shape_string(t.shape) + " overflows 64 bits");
    }
    if (count != t.data.size()) {
      throw std::invalid_argument(what + "shape " + shape_string(t.shape) + " has " +
                                  std::to_string(count) + " elements but data has " +
                                  std::to_string(t.data.size()));
    }
    if (t.dtype == DType::I64) {
      for (std::size_t i = 0; i < t.data.size(); ++i) {
        // [-2^63, 2^63) are the floats whose llround is defined.
        const float v = t.data[i];
        if (!(v >= -0x1p63f && v < 0x1p63f)) {
          throw std::invalid_argument(what + "element " + std::to_string(i) + " = " +
                                      std::to_string(v) + " is not representable as I64");
        }
      }
    }
    if (header.size() > 1) header += ",";
    header += quoted(name);
    header += ":{\"dtype\":\"";
    header += dtype_name(t.dtype);
    header += "\",\"shape\":";
    header += list_string(t.shape, ",");
    header += ",\"data_offsets\":[";
    header += std::to_string(offset);
    header += ",";
    header += std::to_string(offset + bytes);
    header += "]}";
    offset += bytes;
  }
  header += "}";
  // The buffer starts at 8 + header size, so padding the header to a multiple of 8 aligns it.
  header.append((kAlignment - header.size() % kAlignment) % kAlignment, ' ');
  if (header.size() > kMaxHeaderBytes) {
    throw std::invalid_argument("safetensors: header of " + std::to_string(header.size()) +
                                " bytes exceeds the format's limit of " +
                                std::to_string(kMaxHeaderBytes));
  }

  std::vector<uint8_t> out(8 + header.size() + offset);
  store_le<uint64_t>(out.data(), header.size());
  std::memcpy(out.data() + 8, header.data(), header.size());
  uint8_t* p = out.data() + 8 + header.size();
  for (const auto& [name, t] : ckpt.tensors) {
    for (float v : t.data) {
      if (t.dtype == DType::F32) {
        store_le<uint32_t>(p, std::bit_cast<uint32_t>(v));
        p += 4;
      } else {
        store_le<uint64_t>(p, static_cast<uint64_t>(std::llround(v)));
        p += 8;
      }
    }
  }
  return out;
}

void save_safetensors(const std::string& path, const Checkpoint& ckpt) {
  // Serializing first means a checkpoint that cannot be written fails before any file is touched.
  const std::vector<uint8_t> bytes = serialize_safetensors(ckpt);

  // The pid in the name keeps two processes saving to one path from writing into one temp file.
  TempFile tmp;
  tmp.path = path + ".tmp." + std::to_string(::getpid());
  tmp.fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (tmp.fd < 0) fail_io(path, "creating '" + tmp.path + "'", errno);

  const StopMoment stop = test_stop_moment(path);
  std::size_t written = 0;
  while (written < bytes.size()) {
    // With the test hook at "half", the first write stops at half of the bytes.
    const std::size_t end = stop == StopMoment::Half && written < bytes.size() / 2 ? bytes.size() / 2 : bytes.size();
    const ssize_t n = ::write(tmp.fd, bytes.data() + written, end - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail_io(path, "writing '" + tmp.path + "'", errno);
    written += static_cast<std::size_t>(n);
    if (stop == StopMoment::Half && written == bytes.size() / 2) ::raise(SIGSTOP);
  }
  // Without fsync before rename, a power loss can leave the new name pointing at a file whose
  // data never reached the disk: the rename would then destroy the old checkpoint for nothing.
  if (::fsync(tmp.fd) != 0) fail_io(path, "flushing '" + tmp.path + "' to disk", errno);
  if (stop == StopMoment::Rename) ::raise(SIGSTOP);
  const int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) fail_io(path, "closing '" + tmp.path + "'", errno);
  if (::rename(tmp.path.c_str(), path.c_str()) != 0) {
    fail_io(path, "renaming '" + tmp.path + "' over it", errno);
  }
  tmp.renamed = true;

  // Make the rename itself durable. Best effort: some file systems refuse fsync on a directory,
  // and the checkpoint is complete and in place either way.
  const std::size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

Checkpoint load_safetensors(const std::string& path) {
  auto fail = [&](const std::string& step, int err) {
    throw std::runtime_error("cannot read checkpoint '" + path + "': " + step +
                             (err ? ": " + std::generic_category().message(err) : ""));
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail("open", errno);
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) fail("stat", errno);
  if (!S_ISREG(st.st_mode)) fail("not a regular file", 0);

  // One read of the whole file: checkpoints are small, and parsing from memory lets every bound
  // be checked against the real size.
  std::vector<uint8_t> bytes(static_cast<std::size_t>(st.st_size));
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("read", errno);
    if (n == 0) break;  // the file shrank while we read it: parse what is there
    got += static_cast<std::size_t>(n);
  }
  bytes.resize(got);
  return parse_safetensors(bytes, path);
}

}  // namespace ll::io
