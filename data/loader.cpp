// loader.cpp: the batch loader of loader.h.
//
// One worker thread per loader and a one-slot queue: the worker fills the slot with batch k + 1
// while the caller trains on batch k, which it has already taken out of the slot. Each batch is a
// pure function of (data set, options, epoch, k), computed by the same gather_images the caller
// could call itself, so the sequence of batches does not depend on the thread timing.
//
// start_epoch may come at any time, also while the worker is building a batch of the previous
// epoch. A generation counter, bumped by each start_epoch, tells the worker's result apart: a
// batch built for an old generation is dropped instead of being put in the slot.
#include "data/loader.h"

#include <algorithm>
#include <exception>
#include <numeric>
#include <stdexcept>
#include <string>

#include "kernels/common/philox.h"

namespace ll::data {
namespace {

// A Dataset is a plain struct: make sure its fields agree before indexing into its bytes.
void check_dataset(const Dataset& ds, const char* who) {
  if (ds.n < 0 || ds.channels <= 0 || ds.height <= 0 || ds.width <= 0 ||
      static_cast<int64_t>(ds.images.size()) != ds.n * ds.image_size() ||
      (!ds.labels.empty() && static_cast<int64_t>(ds.labels.size()) != ds.n)) {
    throw std::invalid_argument(std::string(who) + ": data set '" + ds.name + "' is inconsistent: " +
                                std::to_string(ds.n) + " images of " + std::to_string(ds.channels) + "x" +
                                std::to_string(ds.height) + "x" + std::to_string(ds.width) + ", " +
                                std::to_string(ds.images.size()) + " bytes, " + std::to_string(ds.labels.size()) +
                                " labels");
  }
}

}  // namespace

struct DataLoader::State {
  const Dataset& dataset;
  LoaderOptions options;
  int64_t num_batches = 0;

  std::mutex mutex;
  std::condition_variable changed;  // any field below changed; both sides wait on it
  bool stop = false;                // the destructor asks the worker to finish
  bool started = false;             // start_epoch was called at least once
  uint64_t generation = 0;          // bumped by start_epoch
  // The visiting order of the current epoch. Shared (and never modified) so that the worker can
  // keep using the order it read while start_epoch installs a new one.
  std::shared_ptr<const std::vector<int64_t>> order;
  int64_t to_build = 0;    // the next batch the worker builds
  int64_t to_hand = 0;     // the next batch next() returns
  std::optional<Batch> slot;         // batch to_hand, when ready
  std::exception_ptr slot_error;     // or why it could not be built
  std::thread worker;

  State(const Dataset& d, LoaderOptions o) : dataset(d), options(o) {}

  Batch build(const std::vector<int64_t>& epoch_order, int64_t k) const {
    const int64_t b = options.batch_size;
    const int64_t begin = k * b;
    const int64_t end = std::min(begin + b, static_cast<int64_t>(epoch_order.size()));
    Batch batch;
    batch.indices.assign(epoch_order.begin() + begin, epoch_order.begin() + end);
    batch.images = gather_images(dataset, batch.indices, options.scale);
    if (!dataset.labels.empty()) {
      batch.labels.reserve(batch.indices.size());
      for (const int64_t i : batch.indices) batch.labels.push_back(dataset.labels[i]);
    }
    return batch;
  }

  void run() {
    std::unique_lock<std::mutex> lock(mutex);
    for (;;) {
      // Work when the slot is free and the epoch has batches left to build.
      changed.wait(lock, [&] { return stop || (started && !slot && !slot_error && to_build < num_batches); });
      if (stop) return;
      const uint64_t gen = generation;
      const int64_t k = to_build;
      const std::shared_ptr<const std::vector<int64_t>> epoch_order = order;
      lock.unlock();  // build without holding the lock: this is the work that overlaps training

      std::optional<Batch> batch;
      std::exception_ptr error;
      try {
        batch = build(*epoch_order, k);
      } catch (...) {
        error = std::current_exception();
      }

      lock.lock();
      if (gen != generation) continue;  // start_epoch came meanwhile: this batch is stale
      slot = std::move(batch);
      slot_error = error;
      ++to_build;
      changed.notify_all();
    }
  }
};

DataLoader::DataLoader(const Dataset& dataset, LoaderOptions options)
    : state_(std::make_unique<State>(dataset, options)) {
  if (options.batch_size <= 0) {
    throw std::invalid_argument("DataLoader: batch_size must be positive, got " + std::to_string(options.batch_size));
  }
  check_dataset(dataset, "DataLoader");
  const int64_t n = dataset.n, b = options.batch_size;
  state_->num_batches = options.drop_last ? n / b : (n + b - 1) / b;
  state_->worker = std::thread([s = state_.get()] { s->run(); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop = true;
  }
  state_->changed.notify_all();
  state_->worker.join();  // waits for at most the one batch being built
}

int64_t DataLoader::batches_per_epoch() const { return state_->num_batches; }

void DataLoader::start_epoch(int64_t epoch) {
  // The permutation is computed outside the lock: the worker may still be building a batch.
  std::vector<int64_t> order;
  if (state_->options.shuffle) {
    order = shuffled_indices(state_->dataset.n, state_->options.seed, epoch);
  } else {
    order.resize(static_cast<size_t>(state_->dataset.n));
    std::iota(order.begin(), order.end(), int64_t{0});
  }
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    ++state_->generation;
    state_->started = true;
    state_->order = std::make_shared<const std::vector<int64_t>>(std::move(order));
    state_->to_build = 0;
    state_->to_hand = 0;
    state_->slot.reset();
    state_->slot_error = nullptr;
  }
  state_->changed.notify_all();
}

std::optional<Batch> DataLoader::next() {
  if (!state_->started) start_epoch(0);  // only the caller's thread sets `started`
  std::unique_lock<std::mutex> lock(state_->mutex);
  if (state_->to_hand >= state_->num_batches) return std::nullopt;
  state_->changed.wait(lock, [&] { return state_->slot || state_->slot_error; });
  if (state_->slot_error) {
    // Leave the error in place: every later next() of this epoch reports it again, until
    // start_epoch clears it.
    std::rethrow_exception(state_->slot_error);
  }
  std::optional<Batch> batch = std::move(state_->slot);
  state_->slot.reset();
  ++state_->to_hand;
  lock.unlock();
  state_->changed.notify_all();  // the slot is free: the worker starts on the next batch
  return batch;
}

Tensor gather_images(const Dataset& dataset, const std::vector<int64_t>& indices, Scale scale) {
  check_dataset(dataset, "gather_images");
  // One table lookup per pixel; the float formulas are the ones of loader.h, evaluated once.
  float table[256];
  for (int v = 0; v < 256; ++v) {
    table[v] = scale == Scale::Unit ? static_cast<float>(v) / 255.0f : static_cast<float>(v) / 127.5f - 1.0f;
  }
  const int64_t size = dataset.image_size();
  const int64_t b = static_cast<int64_t>(indices.size());
  Tensor out = Tensor::empty({b, dataset.channels, dataset.height, dataset.width});
  float* dst = out.data();
  for (int64_t k = 0; k < b; ++k) {
    const int64_t i = indices[k];
    if (i < 0 || i >= dataset.n) {
      throw std::out_of_range("gather_images: index " + std::to_string(i) + " is outside data set '" +
                              dataset.name + "' of " + std::to_string(dataset.n) + " images");
    }
    const uint8_t* src = dataset.images.data() + i * size;
    for (int64_t p = 0; p < size; ++p) dst[k * size + p] = table[src[p]];
  }
  return out;
}

std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed, int64_t epoch) {
  if (n < 0) throw std::invalid_argument("shuffled_indices: negative n " + std::to_string(n));
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});

  // Raw numbers 0, 1, 2, ... of Philox stream (seed, subsequence = epoch), two per 64-bit draw.
  const uint64_t stream = static_cast<uint64_t>(epoch);
  uint64_t counter = 0;
  auto next64 = [&] {
    const uint64_t hi = philox_raw(seed, stream, counter++);
    const uint64_t lo = philox_raw(seed, stream, counter++);
    return (hi << 32) | lo;
  };
  // A uniform integer in [0, bound): `r % bound` is unbiased once the r below `2^64 mod bound` are
  // rejected, which leaves a whole number of copies of [0, bound) in the accepted range. A draw is
  // rejected with probability < bound / 2^64, i.e. practically never, so the stream position of each
  // draw is in effect fixed; the rejection loop only makes the result exactly uniform.
  auto uniform_below = [&](uint64_t bound) {
    const uint64_t threshold = (uint64_t{0} - bound) % bound;  // = 2^64 mod bound
    for (;;) {
      const uint64_t r = next64();
      if (r >= threshold) return r % bound;
    }
  };
  // Fisher-Yates (Durstenfeld): position i takes a uniform pick of the i + 1 elements not yet placed.
  for (int64_t i = n - 1; i > 0; --i) {
    const int64_t j = static_cast<int64_t>(uniform_below(static_cast<uint64_t>(i) + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

std::vector<int64_t> random_subset(int64_t size, int64_t n, uint64_t seed, int64_t stream) {
  if (n <= 0 || n >= size) {
    std::vector<int64_t> all(static_cast<size_t>(std::max<int64_t>(size, 0)));
    std::iota(all.begin(), all.end(), int64_t{0});
    return all;
  }
  std::vector<int64_t> idx = shuffled_indices(size, seed, stream);
  idx.resize(static_cast<size_t>(n));
  std::sort(idx.begin(), idx.end());
  return idx;
}

}  // namespace ll::data
