// dataset.cpp: finding and loading the data sets of dataset.h.
#include "data/dataset.h"

#include <cstdlib>
#include <filesystem>

#include "data/idx.h"
#include "data/image_folder.h"
#include "data/shapes.h"

namespace ll::data {
namespace {

namespace fs = std::filesystem;

// Debian's dataset-fashion-mnist; $LATENTLAB_FASHION_MNIST_DIR points elsewhere (machines without
// the package, e.g. the GPU machines of scripts/gpu-check.sh).
std::string fashion_mnist_dir() {
  const char* env = std::getenv("LATENTLAB_FASHION_MNIST_DIR");
  return env && *env ? env : "/usr/share/datasets/fashion-mnist";
}

// The classes of Fashion-MNIST, in label order (Xiao, Rasul, Vollgraf 2017).
const std::vector<std::string> kFashionMnistClasses = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                       "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
const std::vector<std::string> kMnistClasses = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};

// MNIST's file names: train-* for the training split, t10k-* ("test 10 thousand") for the test split.
std::string file_stem(Split split, const char* what) {
  return std::string(split == Split::Train ? "train" : "t10k") + "-" + what + "-ubyte";
}

// The file `stem` or `stem.gz` in `dir`, whichever exists (uncompressed first: it loads faster);
// empty when neither does.
std::string find_idx(const fs::path& dir, const std::string& stem) {
  for (const std::string& name : {stem, stem + ".gz"}) {
    std::error_code ec;
    if (fs::is_regular_file(dir / name, ec)) return (dir / name).string();
  }
  return "";
}

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw std::runtime_error("data set '" + source + "': " + what);
}

// Fills the images of `ds` from an IDX array: (N, H, W) is one channel, (N, C, H, W) is C channels.
void set_images(Dataset& ds, IdxArray images, const std::string& file) {
  const std::vector<int64_t>& d = images.dims;
  if (d.size() != 3 && d.size() != 4) {
    fail(file, "images must be 3-D (N, H, W) or 4-D (N, C, H, W), the file is " + std::to_string(d.size()) + "-D");
  }
  ds.n = d[0];
  ds.channels = d.size() == 4 ? d[1] : 1;
  ds.height = d[d.size() - 2];
  ds.width = d[d.size() - 1];
  if (ds.n == 0 || ds.image_size() == 0) {
    fail(file, "holds no pixels (" + std::to_string(ds.n) + " images of " + std::to_string(ds.channels) + "x" +
                   std::to_string(ds.height) + "x" + std::to_string(ds.width) + ")");
  }
  ds.images = std::move(images.data);
}

// Fills the labels of `ds` from an IDX array, checking them against the images and `num_classes`
// (0: any byte is a label).
void set_labels(Dataset& ds, IdxArray labels, const std::string& file, int num_classes) {
  if (labels.dims.size() != 1) {
    fail(file, "labels must be 1-D, the file is " + std::to_string(labels.dims.size()) + "-D");
  }
  if (labels.dims[0] != ds.n) {
    fail(file, std::to_string(labels.dims[0]) + " labels for " + std::to_string(ds.n) + " images");
  }
  ds.labels.resize(labels.data.size());
  for (size_t i = 0; i < labels.data.size(); ++i) {
    const int label = labels.data[i];
    if (num_classes > 0 && label >= num_classes) {
      fail(file, "label " + std::to_string(i) + " is " + std::to_string(label) + ", expected 0.." +
                     std::to_string(num_classes - 1));
    }
    ds.labels[i] = label;
  }
}

// Loads {train,t10k}-images-idx3-ubyte[.gz] and, when present (or `labels_required`), the matching
// labels from `dir`. Returns false when the images file is not there.
bool load_folder(Dataset& ds, const fs::path& dir, Split split, bool labels_required, int num_classes) {
  const std::string images_file = find_idx(dir, file_stem(split, "images-idx3"));
  if (images_file.empty()) return false;
  const std::string labels_stem = file_stem(split, "labels-idx1");
  const std::string labels_file = find_idx(dir, labels_stem);
  if (labels_file.empty() && labels_required) {
    throw DatasetNotFound("data set '" + ds.name + "': " + images_file + " is there but " +
                          (dir / labels_stem).string() + "[.gz] is missing");
  }
  set_images(ds, read_idx(images_file), images_file);
  if (!labels_file.empty()) set_labels(ds, read_idx(labels_file), labels_file, num_classes);
  return true;
}

std::string split_name(Split split) { return split == Split::Train ? "train" : "test"; }

// Whether `dir` holds any IDX file (*-ubyte or *-ubyte.gz), so that a folder of IDX files missing
// one split is reported as such rather than read as an image folder.
bool has_idx_files(const fs::path& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.ends_with("-ubyte") || name.ends_with("-ubyte.gz")) return true;
  }
  return false;
}

}  // namespace

std::string mnist_cache_dir() {
  // An empty variable counts as unset, as the XDG base directory specification asks.
  auto env = [](const char* name) -> std::string {
    const char* v = std::getenv(name);
    return v ? v : "";
  };
  if (!env("LATENTLAB_DATA").empty()) return (fs::path(env("LATENTLAB_DATA")) / "mnist").string();
  if (!env("XDG_CACHE_HOME").empty()) return (fs::path(env("XDG_CACHE_HOME")) / "latentlab" / "mnist").string();
  if (!env("HOME").empty()) return (fs::path(env("HOME")) / ".cache" / "latentlab" / "mnist").string();
  throw DatasetNotFound("cannot locate the MNIST cache: set LATENTLAB_DATA, XDG_CACHE_HOME or HOME");
}

Dataset load_dataset(const std::string& name_or_path, Split split, int64_t image_size) {
  Dataset ds;
  ds.name = name_or_path;

  if (name_or_path == "fashion-mnist") {
    ds.class_names = kFashionMnistClasses;
    if (!load_folder(ds, fashion_mnist_dir(), split, true, 10)) {
      throw DatasetNotFound("Fashion-MNIST is not installed: run `sudo apt-get install dataset-fashion-mnist` "
                            "(or bash scripts/deps.sh as root)");
    }
    return ds;
  }

  if (name_or_path == "mnist") {
    const std::string dir = mnist_cache_dir();
    ds.class_names = kMnistClasses;
    if (!load_folder(ds, dir, split, true, 10)) {
      throw DatasetNotFound("MNIST is not in " + dir + ": run `bash scripts/fetch-mnist.sh`");
    }
    return ds;
  }

  // Synthetic dSprites-like shapes (shapes.h): "shapes", "shapes-color", optionally ":N".
  if (is_shapes_name(name_or_path)) {
    Dataset shapes = make_shapes(shapes_options_for(name_or_path, split));
    shapes.name = name_or_path;
    return shapes;
  }

  // A path: a folder in MNIST's layout, a folder of JPEG/PNG/BMP files (image_folder.h), or one
  // images file.
  std::error_code ec;
  const fs::path path(name_or_path);
  if (fs::is_directory(path, ec)) {
    if (!has_idx_files(path) && folder_has_images(name_or_path)) return load_image_folder(name_or_path, split, image_size > 0 ? image_size : 64);
    if (!load_folder(ds, path, split, false, 0)) {
      const std::string stem = file_stem(split, "images-idx3");
      throw DatasetNotFound("data set '" + name_or_path + "': no " + stem + " or " + stem + ".gz in this folder (" +
                            split_name(split) + " split)");
    }
    return ds;
  }
  if (fs::exists(path, ec)) {
    set_images(ds, read_idx(name_or_path), name_or_path);
    return ds;
  }
  throw DatasetNotFound("data set '" + name_or_path +
                        "' not found: expected fashion-mnist, mnist, shapes[:N], shapes-color[:N], a folder "
                        "of {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] files, a folder of .jpg/.png/.bmp "
                        "images, or an images IDX file");
}

}  // namespace ll::data
