// fuzz_idx.cpp: IDX files (data/idx.h) as `latentlab train --data FILE` reads them: the bytes become
// a file, which ll::data::load_dataset reads (read_idx: gzip detected by its magic, then parse_idx)
// and turns into images (3-D or 4-D arrays). Their documented error is std::runtime_error (and its
// subclass DatasetNotFound); anything else (another exception, a sanitizer report, a broken
// invariant) is a finding.
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "data/dataset.h"
#include "fuzz/common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = ll::fuzz::write_scratch_file("images-idx3-ubyte", data, size);
  try {
    const ll::data::Dataset ds = ll::data::load_dataset(path, ll::data::Split::Train);
    // A data set that loads holds what its sizes say.
    if (ds.n < 1 || ds.image_size() < 1 || ds.images.size() != static_cast<size_t>(ds.n * ds.image_size())) {
      std::abort();
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
