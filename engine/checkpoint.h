// checkpoint.h: named tensors to and from safetensors files (engine/io/safetensors.h).
//
// A model's file holds exactly its state_dict (PyTorch's names), so that
//   model.load_state_dict(safetensors.torch.load_file("model.safetensors"))
// works on the same model written in PyTorch; the model's configuration goes in the header's
// metadata, so the file is self-describing. Optimizer state goes in a file of its own.
// Files are written to a temporary name and renamed: a crash never leaves a half-written file.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "engine/nn/module.h"
#include "engine/tensor.h"

namespace ll {

using Metadata = std::map<std::string, std::string>;

// Writes the tensors (copied to the host) as F32, except BatchNorm's "num_batches_tracked"
// counters, written as I64 as PyTorch keeps them.
void save_tensors(const std::string& path, const std::map<std::string, Tensor>& tensors, const Metadata& metadata = {});
// Reads and validates a file; values arrive as float32 CPU tensors. Throws io::FormatError.
std::map<std::string, Tensor> load_tensors(const std::string& path, Metadata* metadata = nullptr);

// For a loader about to build the model that a file's metadata describes, before it builds it:
// throws io::FormatError when the file holds fewer values than that model's `parameters` (so the
// metadata cannot describe the file's tensors; buffers such as BatchNorm's running statistics only
// add values), which keeps a small or tampered file from making the loader build a large model.
void check_holds_parameters(const std::string& path, const std::map<std::string, Tensor>& tensors, int64_t parameters);

// A metadata value that must be a decimal count (an epoch, a seed, a noise offset): its digits alone,
// at most `max`. Throws io::FormatError naming the file and the key when it is missing or not so.
uint64_t metadata_count(const Metadata& metadata, const std::string& key, const std::string& path,
                        uint64_t max = UINT64_MAX);

void save_module(const std::string& path, const Module& module, const Metadata& metadata = {});
// Loads into `module` (strict: every name must match), returning the file's metadata.
Metadata load_module(const std::string& path, Module& module);

}  // namespace ll
