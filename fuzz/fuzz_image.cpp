// fuzz_image.cpp: JPEG, PNG and BMP files through latentlab's stb_image wrapper
// (data/image_folder.h), as `latentlab train --data FOLDER` reads them: the bytes become the one
// file of a folder, which ll::data::load_image_folder decodes (header first: width x height above
// max_pixels is refused before anything is decoded), center-crops, resizes and stores.
// OnImageError::Fail, so a file that cannot be used is a std::runtime_error, the documented error;
// anything else is a finding.
//
// Options: the output is 16x16 (the resize is the same code at any size), gray when the input's
// length is odd and RGB when it is even (stb's two conversions), and max_pixels is 2^16 instead of
// the default 40M: the cap's code is the same, and a header that promises 40M pixels would make
// each such input take a second to decode (stb decodes a truncated JPEG to the end, as zeros),
// which would slow the fuzzer down to a crawl, not find more.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "data/image_folder.h"
#include "fuzz/common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    const std::string d = ll::fuzz::scratch_path("images");
    std::filesystem::create_directory(d);
    return d;
  }();
  ll::fuzz::write_scratch_file("images/image.png", data, size);  // the format is read from the bytes
  ll::data::ImageFolderOptions o;
  o.size = 16;
  o.channels = size % 2 == 1 ? 1 : 3;
  o.on_error = ll::data::OnImageError::Fail;
  o.max_pixels = int64_t{1} << 16;
  try {
    const ll::data::Dataset ds = ll::data::load_image_folder(dir, o);
    if (ds.n != 1 || ds.channels != o.channels || ds.height != 16 || ds.width != 16 ||
        ds.images.size() != static_cast<size_t>(o.channels * 16 * 16)) {
      std::abort();
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
