// dispatch.h: how an engine op reaches its kernel on the tensors' device.
//
//   LL_KERNEL(x.device(), conv2d_forward, s, x.data(), w.data(), b, y.data());
//
// calls kernels::cpu::conv2d_forward(s, ...) for CPU tensors and, for CUDA tensors,
// kernels::cuda::conv2d_forward(s, ..., compute_stream()): the CUDA twin takes the CPU entry
// point's arguments (device pointers) plus the stream (kernels/cuda_runtime.h). All engine work goes
// to that one stream, so an op only enqueues its kernels and returns; the host waits only where it
// reads values back (Tensor::item, to_vector, at, a copy to the CPU).
//
// Without the CUDA backend in the build (-DLATENTLAB_CUDA=OFF) no CUDA tensor can exist (their
// storage cannot be allocated), so the CUDA branch only throws; it never references kernels::cuda,
// whose definitions are then not linked.
#pragma once
#include "engine/device.h"
#include "kernels/cuda_runtime.h"

namespace ll::detail {
// Thrown from the CUDA branch of a build without CUDA: names the kernel.
[[noreturn]] void no_cuda_kernels(const char* kernel);
}  // namespace ll::detail

#ifdef LATENTLAB_HAS_CUDA
#define LL_KERNEL(device, fn, ...)                                                  \
  do {                                                                              \
    if ((device) == ::ll::Device::CPU) {                                            \
      ::ll::kernels::cpu::fn(__VA_ARGS__);                                          \
    } else {                                                                        \
      ::ll::kernels::cuda::fn(__VA_ARGS__, ::ll::kernels::cuda::compute_stream()); \
    }                                                                               \
  } while (0)
#else
#define LL_KERNEL(device, fn, ...)                  \
  do {                                              \
    if ((device) == ::ll::Device::CPU) {            \
      ::ll::kernels::cpu::fn(__VA_ARGS__);          \
    } else {                                        \
      ::ll::detail::no_cuda_kernels(#fn);           \
    }                                               \
  } while (0)
#endif
