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

// ---- pinned (page-locked) host memory: staging for asynchronous host-to-device copies ----------
// A copy from pageable host memory makes the host wait for the GPU; one from pinned memory is only
// queued on the compute stream. The engine therefore stages host-to-device copies (batches, labels,
// values made on the host) through pinned blocks from this cache (CUDA builds only; elsewhere
// pinned_alloc throws). A block may be freed as soon as its copy is queued: it is handed out again
// only after the host has waited for the whole compute stream at some point after the free (every
// such wait is bracketed by device_wait_begin / device_wait_end, engine/device.cpp), so by then the
// copy has read it. Until that, a request of the same size gets a new block (cudaMallocHost); a
// training step waits for the stream at least once (its loss is read on the host), so a few blocks
// per size circulate. Thread-safe.
constexpr size_t kMaxCachedPinnedBytes = size_t{256} << 20;

void* pinned_alloc(size_t bytes);         // nullptr for 0 bytes
void pinned_free(void* p, size_t bytes);  // `bytes` as passed to pinned_alloc
// Bracket a wait of the host for the compute stream: the ticket is taken before the wait starts,
// and handed back once it has returned.
uint64_t device_wait_begin();
void device_wait_end(uint64_t ticket);

struct PinnedAllocatorStats {
  size_t cached_bytes = 0;  // freed blocks kept (awaiting a wait of the stream, or ready)
  int64_t hits = 0;         // requests served from the cache
  int64_t allocations = 0;  // requests that went to cudaMallocHost
};
PinnedAllocatorStats pinned_allocator_stats();

}  // namespace ll
