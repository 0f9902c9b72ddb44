// make_seeds.cpp: writes the fuzz targets' seed corpora, small valid files made by latentlab's own
// writers (and, for what latentlab reads but never writes, such as F16 tensors or JPEGs, by hand,
// with nlohmann-json, zlib and stb_image_write):
//
//   make_seeds OUT      writes OUT/<target>/<file> for every target of fuzz/CMakeLists.txt
//
// The seeds are made at build time rather than committed, so they follow the writers when the
// formats change. scripts/fuzz.sh runs this before fuzzing.
#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/idx.h"
#include "data/image.h"
#include "engine/checkpoint.h"
#include "engine/optim/optimizer.h"
#include "fuzz/tiny_model.h"
#include "models/classifier.h"
#include "models/gan.h"
#include "models/vae.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#define STBI_WRITE_NO_STDIO
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wunused-function"
#pragma clang diagnostic ignored "-Wmissing-field-initializers"
#include <stb_image_write.h>
#pragma clang diagnostic pop

namespace fs = std::filesystem;
using namespace ll;

namespace {

fs::path out_root;
int written = 0;

std::string path_of(const std::string& target, const std::string& name) {
  fs::create_directories(out_root / target);
  return (out_root / target / name).string();
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& target, const std::string& name, const std::vector<uint8_t>& bytes) {
  const std::string path = path_of(target, name);
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
  ++written;
}

void write_text(const std::string& target, const std::string& name, const std::string& text) {
  write_bytes(target, name, std::vector<uint8_t>(text.begin(), text.end()));
}

std::vector<uint8_t> gzip_member(const uint8_t* data, size_t size) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("zlib: deflateInit2 failed");
  }
  std::vector<uint8_t> out(deflateBound(&zs, size));
  zs.next_in = const_cast<Bytef*>(data);
  zs.avail_in = static_cast<uInt>(size);
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("zlib: deflate failed");
  return out;
}

// ---- IDX --------------------------------------------------------------------------------------

data::IdxArray idx_array(std::vector<int64_t> dims) {
  data::IdxArray a;
  a.dims = std::move(dims);
  int64_t n = 1;
  for (int64_t d : a.dims) n *= d;
  for (int64_t i = 0; i < n; ++i) a.data.push_back(static_cast<uint8_t>(i * 37 % 256));
  return a;
}

void idx_seeds() {
  const std::vector<std::pair<std::string, data::IdxArray>> arrays = {
      {"images_3d", idx_array({2, 4, 4})},     // (N, H, W): gray images
      {"images_4d", idx_array({2, 3, 4, 4})},  // (N, C, H, W): color images
      {"labels_1d", idx_array({3})},           // labels: they parse, then are refused as images
  };
  for (const auto& [name, a] : arrays) {
    const std::string raw = path_of("idx", name + ".idx"), gz = path_of("idx", name + ".idx.gz");
    data::write_idx(raw, a);
    data::write_idx(gz, a);  // gzip: fuzz_idx recognizes it by its magic
    written += 2;
    write_bytes("idx_gz", name + ".gz", read_bytes(gz));
    write_bytes("idx_gz", name + ".raw", read_bytes(raw));  // fuzz_idx_gz compresses it itself
  }
  // Two gzip members back to back (`cat a.gz b.gz`), holding the two halves of one IDX file.
  const std::vector<uint8_t> whole = read_bytes(path_of("idx", "images_3d.idx"));
  const size_t half = whole.size() / 2;
  std::vector<uint8_t> two = gzip_member(whole.data(), half);
  const std::vector<uint8_t> second = gzip_member(whole.data() + half, whole.size() - half);
  two.insert(two.end(), second.begin(), second.end());
  write_bytes("idx_gz", "two_members.gz", two);
}

// ---- safetensors ------------------------------------------------------------------------------

// A safetensors file by hand: every dtype latentlab reads (it writes only F32 and I64), a scalar, an
// empty tensor, metadata. Tensors are laid out in the order given.
std::vector<uint8_t> every_dtype_file() {
  struct T {
    const char* name;
    const char* dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  const std::vector<T> tensors = {
      {"f32", "F32", {2}, {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0xc0, 0xff}},      // 1.0, NaN
      {"f64", "F64", {}, {0, 0, 0, 0, 0, 0, 0xf0, 0x3f}},                          // scalar 1.0
      {"f16", "F16", {3}, {0x00, 0x3c, 0x01, 0x00, 0x00, 0x7c}},                   // 1, subnormal, inf
      {"bf16", "BF16", {1, 2}, {0x80, 0x3f, 0x80, 0xbf}},                          // 1, -1
      {"i64", "I64", {1}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}},       // INT64_MAX
      {"i32", "I32", {1}, {0x00, 0x00, 0x00, 0x80}},                               // INT32_MIN
      {"i16", "I16", {2}, {0xff, 0xff, 0x01, 0x00}},                               // -1, 1
      {"i8", "I8", {2}, {0x80, 0x7f}},
      {"u8", "U8", {2, 1}, {0x00, 0xff}},
      {"bool", "BOOL", {3}, {0, 1, 2}},
      {"empty", "F32", {0, 3}, {}},
  };
  nlohmann::ordered_json header;
  header["__metadata__"] = {{"format", "pt"}, {"config", models::VaeConfig().to_json()}};
  std::vector<uint8_t> buffer;
  for (const T& t : tensors) {
    const size_t begin = buffer.size();
    buffer.insert(buffer.end(), t.bytes.begin(), t.bytes.end());
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin, buffer.size()}}};
  }
  const std::string text = header.dump();
  std::vector<uint8_t> out(8);
  const uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(n >> (8 * i));
  out.insert(out.end(), text.begin(), text.end());
  out.insert(out.end(), buffer.begin(), buffer.end());
  return out;
}

void safetensors_and_adam_seeds() {
  write_bytes("safetensors", "every_dtype.safetensors", every_dtype_file());

  // A model checkpoint as `latentlab train vae` writes it (the tiny model: the file stays small).
  Generator init(3);
  models::Autoencoder model(fuzz::tiny_vae_config(), init);
  const std::string model_file = path_of("safetensors", "model.safetensors");
  save_module(model_file, model, {{"config", model.config().to_json()}, {"epoch", "1"}, {"seed", "3"}});
  ++written;

  // Its optimizer state after one step, with "step_exact" (latentlab) and without (PyTorch).
  optim::Adam adam(model.parameters(), {.lr = 1e-3});
  Generator noise(4);
  models::train_step(model, adam, Tensor::full({2, 1, 2, 2}, 0.25f), noise);
  std::map<std::string, Tensor> state = adam.state_dict();
  const std::string adam_file = path_of("adam_state", "optimizer.safetensors");
  save_tensors(adam_file, state, {{"epoch", "1"}});
  write_bytes("safetensors", "optimizer.safetensors", read_bytes(adam_file));
  state.erase("step_exact");
  save_tensors(path_of("adam_state", "optimizer_pytorch.safetensors"), state);
  written += 2;
}

// ---- model configurations ---------------------------------------------------------------------

void config_seeds() {
  models::VaeConfig vae;  // the demo's MLP VAE, 784-400-20
  write_text("config", "vae_mlp.json", vae.to_json());
  models::VaeConfig conv;
  conv.kind = models::AeKind::AE;
  conv.arch = models::Arch::Conv;
  conv.channels = 3;
  conv.height = conv.width = 8;
  conv.conv_channels = 4;
  conv.recon = models::Recon::MSE;
  conv.beta = 4.0;
  write_text("config", "ae_conv.json", conv.to_json());
  for (models::GanArch arch : {models::GanArch::DCGAN28, models::GanArch::CGAN28, models::GanArch::DCGAN64,
                               models::GanArch::GAN128}) {
    models::GanConfig g;
    g.arch = arch;
    g.ngf = g.ndf = 2;  // small enough for the target to build
    g.nz = 4;
    write_text("config", std::string("gan_") + models::gan_arch_name(arch) + ".json", g.to_json());
  }
  models::ClassifierConfig classifier;
  classifier.size = 8;
  classifier.features = 4;
  write_text("config", "classifier.json", classifier.to_json());
}

// ---- images -----------------------------------------------------------------------------------

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  out->insert(out->end(), static_cast<uint8_t*>(data), static_cast<uint8_t*>(data) + size);
}

std::vector<uint8_t> pixels(int w, int h, int c) {
  std::vector<uint8_t> p(static_cast<size_t>(w * h * c));
  for (size_t i = 0; i < p.size(); ++i) p[i] = static_cast<uint8_t>(i * 29 % 256);
  return p;
}

void image_seeds() {
  // PNGs through latentlab's own writer (data/image.h).
  struct Png {
    const char* name;
    int w, h, c;
  };
  for (const Png& p : {Png{"gray_5x3.png", 5, 3, 1}, Png{"rgb_4x4.png", 4, 4, 3}, Png{"rgba_3x5.png", 3, 5, 4}}) {
    data::Image image;
    image.width = p.w;
    image.height = p.h;
    image.channels = p.c;
    image.pixels = pixels(p.w, p.h, p.c);
    data::save_png(path_of("image", p.name), image);
    ++written;
  }
  // JPEG (baseline; gray and color) and BMP through stb_image_write.
  std::vector<uint8_t> out;
  std::vector<uint8_t> px = pixels(8, 8, 3);
  if (!stbi_write_jpg_to_func(append_bytes, &out, 8, 8, 3, px.data(), 90)) throw std::runtime_error("JPEG failed");
  write_bytes("image", "rgb_8x8.jpg", out);
  out.clear();
  px = pixels(9, 7, 1);
  if (!stbi_write_jpg_to_func(append_bytes, &out, 9, 7, 1, px.data(), 50)) throw std::runtime_error("JPEG failed");
  write_bytes("image", "gray_9x7.jpg", out);
  out.clear();
  px = pixels(3, 2, 3);
  if (!stbi_write_bmp_to_func(append_bytes, &out, 3, 2, 3, px.data())) throw std::runtime_error("BMP encoding failed");
  write_bytes("image", "rgb_3x2.bmp", out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_seeds OUT_DIR   (writes OUT_DIR/<target>/ for every fuzz target)\n";
    return 2;
  }
  out_root = argv[1];
  try {
    idx_seeds();
    safetensors_and_adam_seeds();
    config_seeds();
    image_seeds();
  } catch (const std::exception& e) {
    std::cerr << "make_seeds: " << e.what() << "\n";
    return 1;
  }
  std::cout << "make_seeds: " << written << " seed files under " << out_root.string() << "\n";
  return 0;
}
