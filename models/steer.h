// steer.h: learned latent walks on a GAN's noise space (Jahanian, Chai & Isola 2020, "On the
// 'Steerability' of Generative Adversarial Networks", ICLR 2020).
//
// An image edit e(x, a) (a shift by a pixels, a zoom by the factor exp(a), a brightness offset a) is
// imitated by a walk in the generator's noise: the linear walk learns one direction w so that
//
//     G(z + a w)  ~  e(G(z), a)        for z ~ N(0, I) and a drawn from a range,
//
// minimizing the paper's objective E_{z,a} || m(a) * (G(z + a w) - e(G(z), a)) ||^2 (their eq. 1),
// where the mask m keeps the pixels the edit defines: a shift or a zoom-out has no content to move
// in at the borders, and the paper masks those pixels out of the loss instead of asking G to draw
// black there. The generator is frozen (eval mode: BatchNorm's running statistics; its parameters
// get no gradient); only w is trained, with Adam, and the gradient reaches w through G's input
// gradient (the transposed convolutions' dL/dx). e(G(z), a) is the target: computed from G(z) with
// no graph, as the paper's "edit(G(z), a)" is a fixed image per step.
//
// Images are in [0, 1] (the generator's tanh mapped by (x + 1) / 2), so errors are in pixel units
// of the pictures. The edits are plain image operations on host buffers, in this file:
//   shift   out(y, x) = in(y - dy, x - dx), bilinear; m = 1 where (y - dy, x - dx) lies in the image
//   zoom    out(y, x) = in(c + (y - c) / s, c + (x - c) / s), c = (size - 1) / 2, s = exp(a),
//           bilinear; m = 1 where the source point lies in the image (all of it for s >= 1)
//   bright  out = clamp(in + a, 0, 1), m = 1 everywhere
// Zoom's a is log-scale, as the paper's walk z + log(s) w (their section 3.1).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/layers.h"
#include "engine/tensor.h"
#include "models/gan.h"

namespace ll::models {

enum class SteerEdit { ShiftX, ShiftY, Zoom, Brightness };
const char* steer_edit_name(SteerEdit e);  // "shift-x", "shift-y", "zoom", "brightness"
// Throws std::invalid_argument naming --edit and the choices.
SteerEdit parse_steer_edit(const std::string& name);
// The a of training when none is given: shifts of +-size/5 pixels, zoom factors 0.6..1.67
// (a = +-ln(1/0.6) = +-0.51), brightness offsets +-0.4.
std::pair<double, double> default_steer_range(SteerEdit e, int64_t image_size);

// One image's planes (C, H, W) in [0, 1] edited by a into out (C*H*W) and its mask (C*H*W, 0 or 1).
// out is 0 where the mask is 0.
void apply_edit(SteerEdit e, const float* in, int64_t C, int64_t H, int64_t W, double a, float* out, float* mask);
// The same for a batch (N, C, H, W) with one a per image.
void apply_edit_batch(SteerEdit e, const std::vector<float>& in, int64_t N, int64_t C, int64_t H, int64_t W,
                      const std::vector<float>& a, std::vector<float>& out, std::vector<float>& mask);

// z + a w for codes z (N, nz), one a per row, and a direction w (1, nz): a (N, 1) @ w (1, nz) + z,
// composed from matmul and add so that the gradient reaches w (and z when it requires one).
Tensor walk_codes(const Tensor& z, const std::vector<float>& a, const Tensor& w);
// The generator's images of codes in [0, 1], with the graph recorded (GanGenerator::images records
// none): (G(z) + 1) / 2.
Tensor generator_unit(GanGenerator& g, const Tensor& z, const std::vector<int32_t>& labels);

// The objective on one batch: sum(m * (G(z + a w) - e(G(z), a))^2) / sum(m), the mean squared error
// over the pixels the edit defines. A scalar tensor with the graph to w.
Tensor steer_loss(GanGenerator& g, SteerEdit e, const Tensor& z, const std::vector<float>& a, const Tensor& w,
                  const std::vector<int32_t>& labels);

struct SteerTrainOptions {
  SteerEdit edit = SteerEdit::ShiftX;
  double lo = -1, hi = 1;  // a ~ U(lo, hi) per image
  int64_t steps = 400;
  int64_t batch = 32;
  double lr = 1e-2;
  uint64_t seed = 0;  // Philox streams: 0 the codes z, 1 the a's
  int64_t log_every = 25;  // losses recorded every this many steps (the mean since the last record)
};

struct SteerTrainResult {
  Tensor w;                   // (1, nz), on the generator's device, no gradient
  std::vector<double> loss;   // the mean training loss of each log_every steps
  std::vector<int64_t> loss_step;
};

// Learns the linear walk w, starting from w = 0, with g frozen (put in eval mode and its parameters'
// requires_grad turned off for the duration, restored afterwards). A conditional generator draws
// its classes cycling 0, 1, 2, ... over each batch.
SteerTrainResult train_linear_walk(GanGenerator& g, const SteerTrainOptions& o);

// The non-linear walk (the paper's section 3.2): a step z -> z + NN(z), NN a small MLP
// (Linear(nz, hidden) ReLU Linear(hidden, nz)), taken n times for a = n eps, so that
// G(f^n(z)) ~ e(G(z), n eps). The walk may bend and change speed with z, where the linear one is the
// same straight line from every z. Steps towards negative a are a second network (`neg`), as a
// step and its inverse are not the same function. Each step is scaled back to the norm of the code
// it started from (the paper's code does the same), which keeps the walk where prior draws are. The
// last layers start at 0: f starts as the identity, as the linear walk starts at w = 0.
class NonlinearWalk : public Module {
 public:
  NonlinearWalk(int64_t nz, int64_t hidden, double eps_pos, double eps_neg, Generator& init);
  // f^n(z) for n > 0, the negative network's f^|n| for n < 0, z for n = 0.
  Tensor walk(const Tensor& z, int64_t n);
  // The number of steps nearest to a (a / eps of its side, rounded).
  int64_t steps_for(double a) const;
  double eps_pos, eps_neg;  // a per step on each side (eps_neg < 0 < eps_pos)

 private:
  std::shared_ptr<nn::Sequential> pos_, neg_;
};

// Trains both networks with Adam: each step draws n from {-max_steps..-1, 1..max_steps} (one n per
// batch: every code takes the same number of steps) and a = n eps. max_steps covers the training
// range: round(hi / eps_pos) on the positive side, round(lo / eps_neg) on the negative one. The
// generator is frozen as for the linear walk. Returns the losses (SteerTrainResult::w undefined).
SteerTrainResult train_nonlinear_walk(GanGenerator& g, NonlinearWalk& f, const SteerTrainOptions& o);

// The measured transformation at one a, over a fixed set of codes.
struct WalkPoint {
  double a = 0;
  double mse_learned = 0, mse_random = 0, mse_identity = 0;  // masked per-pixel MSE vs e(G(z), a)
  double l2_learned = 0, l2_random = 0, l2_identity = 0;     // mean over images of the masked L2 norm
  // The achieved transformation of G(z + a w) against G(z), mean over images:
  //   shift-x / shift-y: the intensity-weighted centroid's displacement in pixels (target: the edit's)
  //   zoom: the ratio of the intensity-weighted radius of gyration (target: the edit's; ~exp(a))
  //   brightness: the mean intensity (target: the edited image's mean)
  double achieved = 0, target = 0, random_achieved = 0;
};

// The walks along w, along `random` (a direction of the same norm) and no walk at all (the
// identity: G(z) itself) compared with e(G(z), a) at each a, over codes z (N, nz).
std::vector<WalkPoint> measure_walk(GanGenerator& g, SteerEdit e, const Tensor& z, const Tensor& w,
                                    const Tensor& random, const std::vector<double>& as, int64_t batch = 64);
// The same for any walk: walked(z, a) gives the codes the walk reaches from z at a (no graph needed).
using WalkFn = std::function<Tensor(const Tensor& z, double a)>;
std::vector<WalkPoint> measure_walk(GanGenerator& g, SteerEdit e, const Tensor& z, const WalkFn& walked,
                                    const WalkFn& random, const std::vector<double>& as, int64_t batch = 64);

// The statistic WalkPoint::achieved measures, for one image (C, H, W) in [0, 1].
double edit_statistic(SteerEdit e, const float* image, int64_t C, int64_t H, int64_t W);

}  // namespace ll::models
