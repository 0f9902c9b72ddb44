// common.h: what the fuzz targets share.
//
// Readers that take a path (IDX files, image folders, checkpoints) get the fuzzer's bytes through a
// file in a folder of their own, by a relative path: one folder per fuzzing process, made with
// mkdtemp (and entered) on first use under $LATENTLAB_FUZZ_TMPDIR if set, else /dev/shm, else
// $TMPDIR, else /tmp, and removed with its contents when the process exits normally. (A crash
// leaves it behind, hence the variable, which scripts/fuzz.sh points at a folder of its own;
// libFuzzer saves the crashing input itself under -artifact_prefix, which the script gives as an
// absolute path, since the working folder is the scratch folder by then.)
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace ll::fuzz {

// The process's private folder, e.g. "/tmp/latentlab-fuzz-Ab12Cd". Made on first use, and the
// process's working folder from then on (scripts/fuzz.sh hands libFuzzer absolute paths).
const std::string& scratch_dir();

// The path of `name` in the scratch folder, relative to it: the same in every run and on every
// machine, which keeps a run from a fixed -seed the same (see common.cpp).
std::string scratch_path(const std::string& name);

// Writes `size` bytes to scratch_path(name) (replacing it) and returns that path. Aborts when the
// file cannot be written: that is the machine's problem, not a finding.
std::string write_scratch_file(const std::string& name, const uint8_t* data, std::size_t size);

// An invariant a target checks: a broken one aborts, which libFuzzer reports as a crash.
inline void check(bool ok) {
  if (!ok) std::abort();
}

// The same float bits (NaN payloads included).
inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

}  // namespace ll::fuzz
