#include "engine/allocator.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

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

}  // namespace ll
