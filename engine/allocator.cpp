#include "engine/allocator.h"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "kernels/cuda_runtime.h"

namespace ll {

namespace {

constexpr size_t kAlign = 64;  // a cache line, and enough for any SIMD load

size_t rounded(size_t bytes) { return (bytes + kAlign - 1) / kAlign * kAlign; }

struct Cache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // by rounded size
  HostAllocatorStats stats;
};

Cache& cache() {
  // Never destroyed: tensors freed during static destruction still find it.
  static Cache* c = new Cache();
  return *c;
}

}  // namespace

void* host_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t size = rounded(bytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cached_bytes -= size;
      c.stats.live_bytes += size;
      c.stats.peak_bytes = std::max(c.stats.peak_bytes, c.stats.live_bytes);
      ++c.stats.hits;
      return p;
    }
    ++c.stats.misses;
    c.stats.live_bytes += size;
    c.stats.peak_bytes = std::max(c.stats.peak_bytes, c.stats.live_bytes);
  }
  void* p = std::aligned_alloc(kAlign, size);
  if (!p) {
    host_release_cached();  // try again with the cache emptied
    p = std::aligned_alloc(kAlign, size);
    if (!p) {
      std::lock_guard<std::mutex> lock(c.mutex);
      c.stats.live_bytes -= size;
      throw std::bad_alloc();
    }
  }
  return p;
}

void host_free(void* p, size_t bytes) {
  if (!p) return;
  const size_t size = rounded(bytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    c.stats.live_bytes -= size;
    if (c.stats.cached_bytes + size <= kMaxCachedBytes) {
      c.free_blocks[size].push_back(p);
      c.stats.cached_bytes += size;
      return;
    }
  }
  std::free(p);
}

void host_release_cached() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [size, blocks] : c.free_blocks) {
    for (void* p : blocks) std::free(p);
  }
  c.free_blocks.clear();
  c.stats.cached_bytes = 0;
}

HostAllocatorStats host_allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

// ---- pinned host memory ------------------------------------------------------------------------

namespace {

// Tickets of the host's waits for the compute stream: `issued` counts device_wait_begin calls,
// `done` is the largest ticket whose wait has returned. A block freed when `issued` was t may be
// reused once done > t: a wait that began after the free (ticket t + 1 or later, taken after the
// free in program order) has returned, so every copy queued before the free has run.
std::atomic<uint64_t> g_waits_issued{0};
std::atomic<uint64_t> g_waits_done{0};

struct PinnedBlock {
  void* p;
  uint64_t freed_at;  // g_waits_issued when it was freed
};

struct PinnedCache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<PinnedBlock>> free_blocks;  // by rounded size
  PinnedAllocatorStats stats;
};

PinnedCache& pinned_cache() {
  static PinnedCache* c = new PinnedCache();  // never destroyed, as the host cache
  return *c;
}

}  // namespace

uint64_t device_wait_begin() { return g_waits_issued.fetch_add(1) + 1; }

void device_wait_end(uint64_t ticket) {
  uint64_t done = g_waits_done.load();
  while (done < ticket && !g_waits_done.compare_exchange_weak(done, ticket)) {
  }
}

#ifdef LATENTLAB_HAS_CUDA
namespace {
// Pinned blocks are rounded to 4 KiB, so that batches of one size share blocks.
size_t pinned_rounded(size_t bytes) { return (bytes + 4095) / 4096 * 4096; }
}  // namespace

void* pinned_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t size = pinned_rounded(bytes);
  PinnedCache& c = pinned_cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end()) {
      const uint64_t done = g_waits_done.load();
      auto& blocks = it->second;
      for (size_t i = 0; i < blocks.size(); ++i) {
        if (done > blocks[i].freed_at) {
          void* p = blocks[i].p;
          blocks.erase(blocks.begin() + static_cast<std::ptrdiff_t>(i));
          c.stats.cached_bytes -= size;
          ++c.stats.hits;
          return p;
        }
      }
    }
    ++c.stats.allocations;
  }
  return kernels::cuda::malloc_pinned(size);
}

void pinned_free(void* p, size_t bytes) {
  if (!p) return;
  const size_t size = pinned_rounded(bytes);
  PinnedCache& c = pinned_cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.stats.cached_bytes + size <= kMaxCachedPinnedBytes) {
      c.free_blocks[size].push_back({p, g_waits_issued.load()});
      c.stats.cached_bytes += size;
      return;
    }
  }
  // The cache is full: wait until any copy from the block has run, then give it back.
  const uint64_t ticket = device_wait_begin();
  kernels::cuda::synchronize();
  device_wait_end(ticket);
  kernels::cuda::free_pinned(p);
}
#else
void* pinned_alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  throw std::runtime_error("pinned host memory was requested but latentlab was built without CUDA");
}
void pinned_free(void*, size_t) {}
#endif

PinnedAllocatorStats pinned_allocator_stats() {
  PinnedCache& c = pinned_cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

}  // namespace ll
