// image_folder.h: data sets from folders of JPEG, PNG and BMP files.
//
// Two layouts, as torchvision's ImageFolder and its unlabeled cousins know them:
//   labeled     dir/<class>/**/*.jpg   each immediate subfolder is a class; class_names are the
//                                      folder names sorted byte-wise, label k is class_names[k];
//                                      images lying directly in dir belong to no class: left out
//   unlabeled   dir/**/*.png           every image in the folder and below, no labels
// Files are taken in sorted path order, so the same folder always gives the same data set. Names
// starting with '.' are passed over (.git, .ipynb_checkpoints, macOS's "._photo.jpg" resource forks,
// which carry an image extension but no image). Extensions: .jpg .jpeg .png .bmp, any case; the
// format itself is read from the bytes, so a PNG named .jpg still loads.
//
// Every image becomes `size` x `size` pixels: the central square of the picture (side min(w, h)) is
// cut out, then resized with a triangle filter that averages over the whole footprint when shrinking
// (PIL's antialiased bilinear, torchvision's default), so a 4000-pixel photo does not alias. Color
// images become gray through stb's luma weights (0.30 R + 0.59 G + 0.11 B); alpha is dropped; a
// JPEG's EXIF orientation is not applied (nor is it by PIL, hence torchvision, unless asked).
// Pixels stay bytes 0..255; the loader's Scale maps them to [0, 1] or [-1, 1].
//
// A file that cannot be used (not an image, truncated, or over max_pixels) is skipped or fatal, as
// on_error says. max_pixels is checked on the header, before anything is decoded, so one huge or
// hostile file cannot exhaust memory.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace ll::data {

enum class OnImageError {
  Skip,  // leave the file out; one warning line on stderr sums up all skipped files
  Fail,  // throw std::runtime_error naming the file and why
};

struct ImageFolderOptions {
  int64_t size = 64;                  // output side in pixels (square)
  int64_t channels = 3;               // 1: gray, 3: RGB
  bool labels_from_subfolders = false;
  OnImageError on_error = OnImageError::Skip;
  int64_t max_pixels = 40'000'000;    // width * height above this is refused before decoding
};

// What load_image_folder left out (for callers that report it themselves).
struct ImageFolderReport {
  int64_t found = 0;                  // image files found
  std::vector<std::string> skipped;   // "path: reason", in file order
};

// Loads the folder. Throws DatasetNotFound when `dir` is missing, is not a folder, or holds no image
// files (naming what was looked for); std::invalid_argument for bad options; std::runtime_error for
// a broken file under OnImageError::Fail, or when no file at all could be read.
Dataset load_image_folder(const std::string& dir, const ImageFolderOptions& options,
                          ImageFolderReport* report = nullptr);

// The form load_dataset uses for a folder path: `size` x `size` RGB, labels when the folder holds class
// subfolders and no images of its own, broken files skipped. When the folder has train/ and test/
// subfolders, the split picks one (a folder with only one of them uses it for both); otherwise the
// whole folder serves both splits.
Dataset load_image_folder(const std::string& dir, Split split, int64_t size = 64);

// Whether `dir` holds at least one image file (by extension) in it or below.
bool folder_has_images(const std::string& dir);

// Whether `name` ends in one of the image extensions above, in any case.
bool has_image_extension(const std::string& name);

}  // namespace ll::data
