// allocator.h: host memory for tensors, reused across training steps.
//
// A training step allocates the same sizes every step. Large blocks from malloc are fresh mmaps
// whose pages fault in on first touch (and are zeroed by the kernel), which cost more than many of
// the ops writing into them. So a freed block is kept in a cache keyed by its size and handed to
// the next request of that size. The cache holds at most kMaxCachedBytes; beyond that, blocks go
// back to the system. Thread-safe (the data loader allocates on its own thread).
// (The CUDA backend's device allocator follows the same plan.)
#pragma once
#include <cstddef>
#include <cstdint>

namespace ll {

constexpr size_t kMaxCachedBytes = size_t{1} << 30;

void* host_alloc(size_t bytes);            // 64-byte aligned; nullptr for 0 bytes
void host_free(void* p, size_t bytes);     // `bytes` as passed to host_alloc
void host_release_cached();                // gives every cached block back to the system

struct HostAllocatorStats {
  size_t live_bytes = 0;    // handed out and not yet freed
  size_t peak_bytes = 0;    // the most live at any time
  size_t cached_bytes = 0;  // freed, kept for reuse
  int64_t hits = 0;         // requests served from the cache
  int64_t misses = 0;       // requests that went to the system
};
HostAllocatorStats host_allocator_stats();

}  // namespace ll
