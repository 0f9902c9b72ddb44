// device_scalars.h: reading a training step's figures (losses, logits) on the host without making
// the host wait for the GPU inside the step.
//
// A Readback takes device tensors after the step has queued its work: start() queues one
// device-to-host copy per tensor on the compute stream, into page-locked (pinned) host memory it
// owns, and records an event behind them; values() waits for that event (the only wait) and returns
// the copied floats, in order. Between start() and values() the host is free to queue the next
// step. On the CPU start() copies the values at once (nothing to wait for) and values() returns
// them: the same floats as .item() / .to_vector() would have read, so host-side arithmetic on them
// is unchanged bit for bit.
//
// The wait in values() is bracketed by device_wait_begin / device_wait_end (engine/allocator.h): the
// ticket is taken before the event is recorded, so every pinned staging block freed before start()
// (whose host-to-device copies were queued before the event) becomes reusable once values() returns,
// as after a full cuda_synchronize().
//
// host_waits(): the number of times the host has waited for the compute stream synchronously: a
// device-to-host copy (Tensor::item, to_vector, at, copy_ / to onto the CPU), cuda_synchronize, or a
// host-to-device copy too large to stage. Readback waits are not among them (readback_waits()).
// A sync-free training step leaves host_waits() unchanged (tests/models/test_sync_free_step.cpp).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace ll {

class Readback {
 public:
  Readback() = default;
  ~Readback();
  Readback(const Readback&) = delete;
  Readback& operator=(const Readback&) = delete;
  Readback(Readback&& other) noexcept;
  Readback& operator=(Readback&& other) noexcept;

  // Queues copies of every tensor's values (concatenated in order) to the host. All tensors must be
  // on one device. A readback started before and not yet read is waited for first.
  void start(const std::vector<Tensor>& tensors);
  // True between start() and the first values() after it.
  bool pending() const { return pending_; }
  // Waits for the copies (on the GPU: the event behind them) and returns the values. Throws
  // std::logic_error when nothing was started.
  const std::vector<float>& values();

 private:
  void release() noexcept;
  std::vector<float> host_;  // the values once read (CPU: at once)
  bool pending_ = false;
  bool started_ = false;
  bool on_gpu_ = false;
  float* pinned_ = nullptr;   // GPU: the copies' destination
  size_t pinned_floats_ = 0;  // its capacity
  size_t count_ = 0;          // floats queued
  void* event_ = nullptr;     // cudaEvent_t
  uint64_t ticket_ = 0;       // device_wait_begin's, for device_wait_end
};

// See above. Process-wide, thread-safe counters.
int64_t host_waits();
int64_t readback_waits();

namespace detail {
void note_host_wait();  // engine/device.cpp, at every synchronous wait for the compute stream
}  // namespace detail

}  // namespace ll
