// device_flags.h: the flags that choose where a subcommand runs its model, shared by train, eval
// and sample:
//   --device auto|cpu|cuda     auto: the GPU when one is usable (engine/device.h)
//   --conv-backend native|cudnn  GPU convolutions: latentlab's kernels or cuDNN's
//   --allow-tf32               GPU matrix products may use TF32 tensor cores
// The last two change nothing on the CPU (--device cpu, or auto without a GPU); --help says so.
#pragma once
#include <string>

#include <CLI/CLI.hpp>

#include "engine/device.h"

namespace ll::app {

struct DeviceFlags {
  std::string device = "auto";
  std::string conv_backend = "native";
  bool allow_tf32 = false;
};

// Registers the three flags on `cmd`, writing into `flags` (which must outlive the parse).
void add_device_flags(CLI::App* cmd, DeviceFlags& flags);

// The device to run on (parse_device) with the CUDA options applied when it is the GPU. Throws
// std::invalid_argument naming the flag at fault.
Device apply_device_flags(const DeviceFlags& flags);

}  // namespace ll::app
