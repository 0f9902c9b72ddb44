// test_idx.cpp: IDX files: round trips (plain and gzip) and hand-built malformed files, each of
// which must be rejected with a message naming the file and the problem, never a crash.
#include <zlib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/common/temp_dir.h"
#include "data/idx.h"

namespace ll::data {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

std::vector<uint8_t> gzip_bytes(const std::vector<uint8_t>& in) {
  z_stream zs{};
  EXPECT_EQ(deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::vector<uint8_t> out(deflateBound(&zs, in.size()));
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&zs, Z_FINISH), Z_STREAM_END);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// The IDX bytes of an unsigned-byte array: header (magic, type 0x08, ndim, big-endian sizes) + data.
std::vector<uint8_t> idx_bytes(const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data,
                               uint8_t type = 0x08) {
  std::vector<uint8_t> b = {0, 0, type, static_cast<uint8_t>(dims.size())};
  for (const uint32_t d : dims) {
    for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(d >> s));
  }
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

std::vector<uint8_t> counting(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i * 37 + 11);
  return v;
}

// read_idx(path) must throw std::runtime_error whose message contains `phrase` and the file name.
void expect_rejected(const std::string& path, const std::string& phrase) {
  try {
    read_idx(path);
    ADD_FAILURE() << path << ": accepted, expected an error containing \"" << phrase << "\"";
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(phrase), std::string::npos) << "message: " << msg << "\nexpected phrase: " << phrase;
    EXPECT_NE(msg.find(path), std::string::npos) << "message does not name the file: " << msg;
  }
}

TEST(Idx, RoundTripPlainAndGzip) {
  TempDir dir("idx");
  const std::vector<std::vector<int64_t>> shapes = {{7}, {3, 4}, {2, 3, 5}, {2, 3, 4, 5}, {0, 28, 28}};
  for (const auto& dims : shapes) {
    IdxArray a;
    a.dims = dims;
    int64_t count = 1;
    for (const int64_t d : dims) count *= d;
    a.data = counting(static_cast<size_t>(count));
    for (const std::string name : {"a.idx", "a.idx.gz"}) {
      const std::string path = dir.file(name);
      write_idx(path, a);
      const IdxArray b = read_idx(path);
      EXPECT_EQ(b.dims, a.dims) << name;
      EXPECT_EQ(b.data, a.data) << name;
    }
    // The plain file is exactly the format of idx.h; the .gz one is real gzip.
    std::vector<uint32_t> udims(dims.begin(), dims.end());
    EXPECT_EQ(read_bytes(dir.file("a.idx")), idx_bytes(udims, a.data));
    const std::vector<uint8_t> gz = read_bytes(dir.file("a.idx.gz"));
    ASSERT_GE(gz.size(), 2u);
    EXPECT_EQ(gz[0], 0x1f);
    EXPECT_EQ(gz[1], 0x8b);
  }
  // The temporary files were all renamed away.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()), 2);
}

TEST(Idx, GzipDetectedByMagicAndConcatenatedMembers) {
  TempDir dir("idx");
  const std::vector<uint8_t> plain = idx_bytes({2, 3}, counting(6));
  // A gzipped file without .gz in its name is still recognized by its magic bytes.
  write_bytes(dir.file("renamed"), gzip_bytes(plain));
  EXPECT_EQ(read_idx(dir.file("renamed")).data, counting(6));
  // Two gzip members back to back inflate to their concatenation, as with gunzip.
  const std::vector<uint8_t> first(plain.begin(), plain.begin() + 9), second(plain.begin() + 9, plain.end());
  std::vector<uint8_t> two = gzip_bytes(first);
  const std::vector<uint8_t> g2 = gzip_bytes(second);
  two.insert(two.end(), g2.begin(), g2.end());
  write_bytes(dir.file("two.gz"), two);
  EXPECT_EQ(read_idx(dir.file("two.gz")).data, counting(6));
}

TEST(Idx, MalformedFilesAreRejectedWithTheReason) {
  TempDir dir("idx");
  struct Case {
    const char* name;
    std::vector<uint8_t> bytes;
    const char* phrase;
  };
  std::vector<uint8_t> bad_magic = idx_bytes({3}, counting(3));
  bad_magic[1] = 0x01;
  std::vector<uint8_t> five_dims = idx_bytes({1, 1, 1, 1, 1}, {42});
  std::vector<uint8_t> trailing = idx_bytes({2, 2}, counting(5));
  std::vector<uint8_t> truncated = idx_bytes({2, 2}, counting(3));
  const std::vector<Case> cases = {
      {"empty", {}, "truncated header"},
      {"three_bytes", {0, 0, 8}, "truncated header"},
      {"bad_magic", bad_magic, "bad magic"},
      {"png_file", {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a}, "bad magic"},
      {"type_float", idx_bytes({3}, counting(12), 0x0d), "unsupported element type 0x0d"},
      {"type_int", idx_bytes({3}, counting(12), 0x0c), "unsupported element type 0x0c"},
      {"zero_dims", {0, 0, 8, 0}, "has 0 dimensions, expected 1 to 4"},
      {"five_dims", five_dims, "has 5 dimensions, expected 1 to 4"},
      {"sizes_cut", {0, 0, 8, 3, 0, 0, 0, 2, 0, 0}, "truncated header"},
      {"data_cut", truncated, "truncated: header (2, 2) promises 4 bytes of data, file has 3"},
      {"trailing", trailing, "trailing bytes: header (2, 2) promises 4 bytes of data, file has 5 (1 extra)"},
      // 65536^3 bytes = 256 TiB: refused from the header alone, without allocating or reading.
      {"huge_product", idx_bytes({65536, 65536, 65536}, counting(8)), "MiB limit"},
      {"max_dims", idx_bytes({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {}), "MiB limit"},
      // No bytes of data (a size is 0), but sizes that multiply past int64 elsewhere: the data set's
      // C * H * W of this 20-byte file overflowed (found while writing fuzz/fuzz_idx.cpp).
      {"empty_but_huge", idx_bytes({1, 0xffffffffu, 0xffffffffu, 0}, {}),
       "dimensions (1, 4294967295, 4294967295, 0) promise more than the 1024 MiB limit (their sizes other than 0"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = dir.file(c.name);
    write_bytes(path, c.bytes);
    expect_rejected(path, c.phrase);
    // The same bytes gzipped fail the same way once inflated.
    write_bytes(path + ".gz", gzip_bytes(c.bytes));
    expect_rejected(path + ".gz", c.phrase);
  }
}

TEST(Idx, BrokenGzipIsRejected) {
  TempDir dir("idx");
  // Not gzip at all, in a file named .gz.
  write_bytes(dir.file("garbage.gz"), {'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!'});
  expect_rejected(dir.file("garbage.gz"), "not valid gzip data");
  // The gzip magic followed by garbage.
  std::vector<uint8_t> fake = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03};
  for (int i = 0; i < 64; ++i) fake.push_back(static_cast<uint8_t>(i * 97 + 13));
  write_bytes(dir.file("fake"), fake);
  expect_rejected(dir.file("fake"), "gzip data");
  // A valid gzip member followed by garbage.
  std::vector<uint8_t> junk_after = gzip_bytes(idx_bytes({2}, {1, 2}));
  junk_after.insert(junk_after.end(), {'j', 'u', 'n', 'k'});
  write_bytes(dir.file("junk_after.gz"), junk_after);
  expect_rejected(dir.file("junk_after.gz"), "not valid gzip data");
  // A gzip stream cut short.
  const std::vector<uint8_t> gz = gzip_bytes(idx_bytes({100}, counting(100)));
  write_bytes(dir.file("cut.gz"), std::vector<uint8_t>(gz.begin(), gz.begin() + static_cast<long>(gz.size() / 2)));
  expect_rejected(dir.file("cut.gz"), "truncated gzip data");
}

TEST(Idx, EveryTruncationThrowsNeverCrashes) {
  TempDir dir("idx");
  const std::vector<uint8_t> good = idx_bytes({2, 3}, counting(6));
  ASSERT_NO_THROW(parse_idx(good, "good"));
  for (size_t len = 0; len < good.size(); ++len) {
    const std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<long>(len));
    EXPECT_THROW(parse_idx(cut, "cut"), std::runtime_error) << "length " << len;
  }
  // Every truncation of the gzipped file too (the cut may fall in the header, data or trailer).
  const std::vector<uint8_t> gz = gzip_bytes(good);
  for (size_t len = 0; len < gz.size(); ++len) {
    const std::string path = dir.file("cut" + std::to_string(len) + ".gz");
    write_bytes(path, std::vector<uint8_t>(gz.begin(), gz.begin() + static_cast<long>(len)));
    EXPECT_THROW(read_idx(path), std::runtime_error) << "gzip length " << len;
  }
}

TEST(Idx, ParseNamesItsSource) {
  try {
    parse_idx({1, 2, 3, 4}, "in-memory labels");
    FAIL() << "accepted bad magic";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("in-memory labels"), std::string::npos) << e.what();
  }
}

TEST(Idx, MissingFileNamesThePath) {
  TempDir dir("idx");
  expect_rejected(dir.file("nowhere.idx"), "cannot open");
}

TEST(Idx, WriteRejectsInconsistentArrays) {
  TempDir dir("idx");
  const std::string path = dir.file("w.idx");
  IdxArray wrong_size{{2, 3}, counting(5)};
  EXPECT_THROW(write_idx(path, wrong_size), std::runtime_error);
  IdxArray no_dims{{}, {}};
  EXPECT_THROW(write_idx(path, no_dims), std::runtime_error);
  IdxArray five{{1, 1, 1, 1, 1}, {0}};
  EXPECT_THROW(write_idx(path, five), std::runtime_error);
  IdxArray negative{{-1}, {}};
  EXPECT_THROW(write_idx(path, negative), std::runtime_error);
  IdxArray empty_but_huge{{1, 0xffffffffLL, 0xffffffffLL, 0}, {}};  // what read_idx refuses
  EXPECT_THROW(write_idx(path, empty_but_huge), std::runtime_error);
  EXPECT_FALSE(fs::exists(path));
  // A folder that does not exist: the error names the file.
  try {
    write_idx(dir.file("no/such/dir.idx"), IdxArray{{1}, {7}});
    FAIL() << "wrote into a missing folder";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/dir.idx"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ll::data
