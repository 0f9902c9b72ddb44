// common.h: what the fuzz targets share.
//
// Readers that take a path (IDX files, image folders, checkpoints) get the fuzzer's bytes through a
// file in a folder of their own: one folder per fuzzing process, made with mkdtemp on first use
// under $LATENTLAB_FUZZ_TMPDIR if set, else /dev/shm, else $TMPDIR, else /tmp, and removed with its
// contents when the process exits normally. (A crash leaves it behind, hence the variable, which
// scripts/fuzz.sh points at a folder of its own; libFuzzer saves the crashing input itself, as
// crash-<sha1> in its working folder or under -artifact_prefix.)
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ll::fuzz {

// The process's private folder, e.g. "/tmp/latentlab-fuzz-Ab12Cd".
const std::string& scratch_dir();

// Writes `size` bytes to scratch_dir()/name (replacing it) and returns its path. Aborts when the
// file cannot be written: that is the machine's problem, not a finding.
std::string write_scratch_file(const std::string& name, const uint8_t* data, std::size_t size);

}  // namespace ll::fuzz
