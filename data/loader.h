// loader.h: batches of a Dataset for training, prepared on a background thread.
//
// Each epoch visits every image once, in an order shuffled by a seeded Philox-driven Fisher-Yates
// shuffle (same seed and epoch -> same order on every machine), or in file order without shuffling.
// Images are scaled to [0, 1] (x / 255) or [-1, 1] (x / 127.5 - 1). The last incomplete batch is
// kept or dropped. While the caller trains on batch k, a worker thread fills batch k + 1.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "engine/tensor.h"

namespace ll::data {

enum class Scale { Unit, Symmetric };  // [0, 1] or [-1, 1]

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;
  Scale scale = Scale::Unit;
  uint64_t seed = 0;
};

struct Batch {
  Tensor images;                 // (B, C, H, W) float32 on the CPU
  std::vector<int32_t> labels;   // B values, or empty
  std::vector<int64_t> indices;  // positions of the images in the data set
};

class DataLoader {
 public:
  DataLoader(const Dataset& dataset, LoaderOptions options);  // keeps a reference: dataset must outlive it
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  int64_t batches_per_epoch() const;
  // Starts epoch `epoch` (0-based; selects the shuffle). Any batches left of the previous one are dropped.
  void start_epoch(int64_t epoch);
  // The next batch of the current epoch, or nothing when the epoch is over. Without a start_epoch
  // first, starts epoch 0. An exception thrown while the worker built the batch is rethrown here.
  // One thread at a time may call start_epoch and next().
  std::optional<Batch> next();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// The images of the data set at `indices`, scaled, as a (B, C, H, W) tensor.
Tensor gather_images(const Dataset& dataset, const std::vector<int64_t>& indices, Scale scale);

// A permutation of 0..n-1 from (seed, epoch): Fisher-Yates with Philox draws from stream
// (seed, subsequence = epoch), two raw numbers per 64-bit draw, made uniform by rejection.
std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed, int64_t epoch);

// The first n positions of shuffled_indices(size, seed, stream), in ascending order (all of
// 0..size-1 when n is 0 or at least size): a random subset in file order, so that a data set stored
// sorted by class still gives every class (latentlab score and latent-map --n).
std::vector<int64_t> random_subset(int64_t size, int64_t n, uint64_t seed, int64_t stream);

}  // namespace ll::data
