#include "apps/device_flags.h"

namespace ll::app {

void add_device_flags(CLI::App* cmd, DeviceFlags& flags) {
  cmd->add_option("--device", flags.device, "auto (the GPU when one is usable), cpu or cuda")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  cmd->add_option("--conv-backend", flags.conv_backend,
                  "GPU convolutions: native (latentlab's kernels) or cudnn (cuDNN); no effect on the CPU")
      ->capture_default_str()
      ->check(CLI::IsMember({"native", "cudnn"}));
  cmd->add_flag("--allow-tf32", flags.allow_tf32,
                "let GPU matrix products use TF32 tensor cores (faster, about 1e-3 relative error); no effect on the CPU");
}

Device apply_device_flags(const DeviceFlags& flags) {
  const Device device = parse_device(flags.device);
  if (device == Device::CUDA) set_cuda_options(flags.conv_backend, flags.allow_tf32);
  return device;
}

}  // namespace ll::app
