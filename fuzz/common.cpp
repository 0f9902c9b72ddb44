// common.cpp: the fuzz targets' scratch folder (common.h).
#include "fuzz/common.h"

#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <system_error>

namespace ll::fuzz {
namespace {

struct ScratchDir {
  std::string path;
  ScratchDir() {
    // $LATENTLAB_FUZZ_TMPDIR (scripts/fuzz.sh sets it to a folder it removes afterwards, crash or
    // not), else memory (/dev/shm) where there is one: on a disk, rewriting a file a thousand times
    // a second waits for the file system (ext4 flushes a file truncated and written again when it is
    // closed).
    const char* mine = std::getenv("LATENTLAB_FUZZ_TMPDIR");
    const char* tmp = std::getenv("TMPDIR");
    const std::string root = mine && *mine                       ? mine
                             : ::access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                             : tmp && *tmp                     ? tmp
                                                               : "/tmp";
    std::string pattern = root + "/latentlab-fuzz-XXXXXX";
    if (!::mkdtemp(pattern.data())) {
      std::perror(("fuzz: mkdtemp " + pattern).c_str());
      std::abort();
    }
    path = pattern;
    // Work inside it, so that the readers see the same relative paths in every run (scratch_path):
    // file names enter libFuzzer's comparison tables (memcmp, strcmp hooks), and a random folder
    // name would make two runs from one -seed mutate differently.
    if (::chdir(path.c_str()) != 0) {
      std::perror(("fuzz: chdir " + path).c_str());
      std::abort();
    }
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

const std::string& scratch_dir() {
  static const ScratchDir dir;
  return dir.path;
}

std::string scratch_path(const std::string& name) {
  scratch_dir();  // made, and entered, on first use
  return name;
}

std::string write_scratch_file(const std::string& name, const uint8_t* data, std::size_t size) {
  const std::string path = scratch_path(name);
  std::remove(path.c_str());  // a new file rather than a truncated one (see ScratchDir)
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) {
    std::perror(("fuzz: cannot create " + path).c_str());
    std::abort();
  }
  if ((size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
    std::perror(("fuzz: cannot write " + path).c_str());
    std::abort();
  }
  return path;
}

}  // namespace ll::fuzz
