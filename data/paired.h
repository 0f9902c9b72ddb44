// paired.h: paired image-to-image data for pix2pix (Isola et al. 2017, "Image-to-Image Translation
// with Conditional Adversarial Networks"), made from an image data set: each target image y gets an
// input image x derived from it, deterministically, so the train and test pairs are fixed.
//
//   edges    x = the edge map of y: the Sobel gradient magnitude of y (in [0, 1] units, zero padding
//            outside the image) thresholded at `edge_threshold`: edge pixels 1, the rest 0. The
//            "edges -> photo" task of the paper (its edges came from HED, Xie & Tu 2015; Sobel is
//            the simple, dependency-free stand-in).
//   inpaint  x = y with a square of side `mask_size` set to 0.5 (mid-grey): the context-encoder
//            task (Pathak et al. 2016), which the paper's framework covers. The square's corner is
//            drawn per image from (seed, the image's index in its data set) by a Philox stream, so
//            the same image always gets the same hole, whatever the batch or the epoch.
//
// Inputs and targets are in [0, 1] here (data::Scale::Unit); the trainer maps both to [-1, 1].
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ll::data {

enum class PairTask { Edges, Inpaint };

// "edges" or "inpaint"; std::invalid_argument naming --task otherwise.
PairTask parse_pair_task(const std::string& name);
const char* pair_task_name(PairTask task);

struct PairOptions {
  PairTask task = PairTask::Edges;
  float edge_threshold = 0.5f;  // Sobel magnitude (|gx|, |gy| up to 4 for a [0, 1] image)
  int64_t mask_size = 12;       // side of the inpainting square (at most the image's side)
  uint64_t seed = 0;            // the masks' stream
};

// targets (B, C, H, W) in [0, 1] on the CPU; indices: the B images' positions in their data set
// (used by inpaint). Returns the inputs (B, C, H, W) in [0, 1]. Edges of a multi-channel image are
// those of its channel mean, repeated on every channel.
Tensor make_pair_inputs(const Tensor& targets, const std::vector<int64_t>& indices, const PairOptions& options);

}  // namespace ll::data
