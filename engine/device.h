// device.h: where a tensor lives. `cpu` always; `cuda` when the build has the CUDA backend and a
// GPU is present.
#pragma once
#include <string>

namespace ll {

enum class Device { CPU, CUDA };

const char* device_name(Device d);

// True when this binary was built with the CUDA backend.
bool cuda_built();
// True when CUDA is built and at least one GPU is usable. When false and `reason` is given, it says
// why ("built without CUDA", or the runtime's message, e.g. "CUDA driver version is insufficient
// for CUDA runtime version").
bool cuda_available(std::string* reason = nullptr);
// A line describing the GPU, or the reason there is none.
std::string cuda_description();

// Parses a --device flag: "cpu", "cuda", or "auto" (CUDA when available, else CPU). Throws
// std::invalid_argument with the accepted values for anything else, and for "cuda" without a GPU.
Device parse_device(const std::string& flag);

}  // namespace ll
