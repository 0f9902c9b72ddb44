// steer.cpp: the image edits, the walk's objective, its training and its measurement (steer.h).
#include "models/steer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
#include "engine/rng.h"

namespace ll::models {

const char* steer_edit_name(SteerEdit e) {
  switch (e) {
    case SteerEdit::ShiftX: return "shift-x";
    case SteerEdit::ShiftY: return "shift-y";
    case SteerEdit::Zoom: return "zoom";
    case SteerEdit::Brightness: return "brightness";
  }
  return "?";
}

SteerEdit parse_steer_edit(const std::string& name) {
  for (SteerEdit e : {SteerEdit::ShiftX, SteerEdit::ShiftY, SteerEdit::Zoom, SteerEdit::Brightness}) {
    if (name == steer_edit_name(e)) return e;
  }
  throw std::invalid_argument("--edit must be shift-x, shift-y, zoom or brightness, got '" + name + "'");
}

std::pair<double, double> default_steer_range(SteerEdit e, int64_t image_size) {
  switch (e) {
    case SteerEdit::ShiftX:
    case SteerEdit::ShiftY: {
      const double s = static_cast<double>(image_size) / 5.0;
      return {-s, s};
    }
    case SteerEdit::Zoom: return {std::log(0.6), -std::log(0.6)};
    case SteerEdit::Brightness: return {-0.4, 0.4};
  }
  return {-1, 1};
}

namespace {

// Bilinear sample of one plane (H, W) at (sy, sx); false (and 0) when the point is outside
// [0, H-1] x [0, W-1] (a tolerance of 1e-4 pixels absorbs the rounding of c + (y - c) / s).
bool sample_bilinear(const float* plane, int64_t H, int64_t W, double sy, double sx, float& value) {
  constexpr double kTol = 1e-4;
  if (!(sy >= -kTol && sy <= static_cast<double>(H - 1) + kTol && sx >= -kTol && sx <= static_cast<double>(W - 1) + kTol)) {
    value = 0.0f;
    return false;
  }
  sy = std::clamp(sy, 0.0, static_cast<double>(H - 1));
  sx = std::clamp(sx, 0.0, static_cast<double>(W - 1));
  const int64_t y0 = static_cast<int64_t>(std::floor(sy)), x0 = static_cast<int64_t>(std::floor(sx));
  const int64_t y1 = std::min(y0 + 1, H - 1), x1 = std::min(x0 + 1, W - 1);
  const double fy = sy - static_cast<double>(y0), fx = sx - static_cast<double>(x0);
  const double top = (1 - fx) * plane[y0 * W + x0] + fx * plane[y0 * W + x1];
  const double bottom = (1 - fx) * plane[y1 * W + x0] + fx * plane[y1 * W + x1];
  value = static_cast<float>((1 - fy) * top + fy * bottom);
  return true;
}

}  // namespace

void apply_edit(SteerEdit e, const float* in, int64_t C, int64_t H, int64_t W, double a, float* out, float* mask) {
  const int64_t P = H * W;
  if (e == SteerEdit::Brightness) {
    for (int64_t i = 0; i < C * P; ++i) {
      out[i] = std::clamp(in[i] + static_cast<float>(a), 0.0f, 1.0f);
      mask[i] = 1.0f;
    }
    return;
  }
  // The source point of each output pixel: a shift moves content by +a (right / down), a zoom by
  // s = exp(a) about the centre (s > 1 magnifies).
  const double cy = static_cast<double>(H - 1) / 2, cx = static_cast<double>(W - 1) / 2, s = std::exp(a);
  for (int64_t c = 0; c < C; ++c) {
    const float* plane = in + c * P;
    for (int64_t y = 0; y < H; ++y) {
      for (int64_t x = 0; x < W; ++x) {
        double sy = static_cast<double>(y), sx = static_cast<double>(x);
        if (e == SteerEdit::ShiftX) sx -= a;
        else if (e == SteerEdit::ShiftY) sy -= a;
        else {
          sy = cy + (sy - cy) / s;
          sx = cx + (sx - cx) / s;
        }
        float v = 0.0f;
        const bool valid = sample_bilinear(plane, H, W, sy, sx, v);
        out[c * P + y * W + x] = v;
        mask[c * P + y * W + x] = valid ? 1.0f : 0.0f;
      }
    }
  }
}

void apply_edit_batch(SteerEdit e, const std::vector<float>& in, int64_t N, int64_t C, int64_t H, int64_t W,
                      const std::vector<float>& a, std::vector<float>& out, std::vector<float>& mask) {
  const int64_t S = C * H * W;
  if (static_cast<int64_t>(in.size()) != N * S || static_cast<int64_t>(a.size()) != N) {
    throw std::invalid_argument("apply_edit_batch: " + std::to_string(in.size()) + " values and " +
                                std::to_string(a.size()) + " a's for " + std::to_string(N) + " images of " +
                                std::to_string(S));
  }
  out.assign(in.size(), 0.0f);
  mask.assign(in.size(), 0.0f);
  for (int64_t n = 0; n < N; ++n) {
    apply_edit(e, in.data() + n * S, C, H, W, a[static_cast<size_t>(n)], out.data() + n * S, mask.data() + n * S);
  }
}

Tensor walk_codes(const Tensor& z, const std::vector<float>& a, const Tensor& w) {
  check_arg(z.dim() == 2 && w.dim() == 2 && w.size(0) == 1 && w.size(1) == z.size(1) &&
                static_cast<int64_t>(a.size()) == z.size(0),
            "walk_codes", "expects z (N, nz), N a's and w (1, nz), got z " + z.str() + ", " + std::to_string(a.size()) +
                              " a's, w " + w.str());
  // No broadcasting in the engine: the outer product a w^T is a (N, 1) @ (1, nz) matrix product,
  // whose backward gives dL/dw = a^T dL/d(z + a w).
  const Tensor at = Tensor::from_vector(a, {z.size(0), 1}, z.device());
  return add(z, matmul(at, w));
}

Tensor generator_unit(GanGenerator& g, const Tensor& z, const std::vector<int32_t>& labels) {
  return scale(add_scalar(g.forward(z, labels), 1.0f), 0.5f);
}

namespace {

// e(G(z), a) and its mask as tensors on z's device: the target of the walk.
std::pair<Tensor, Tensor> edit_targets(GanGenerator& g, SteerEdit e, const Tensor& z, const std::vector<float>& a,
                                       const std::vector<int32_t>& labels, std::vector<float>* base = nullptr) {
  Tensor x0;
  {
    NoGradGuard no_grad;
    x0 = generator_unit(g, z, labels);
  }
  const int64_t N = x0.size(0), C = x0.size(1), H = x0.size(2), W = x0.size(3);
  std::vector<float> host = x0.to_vector(), out, mask;
  apply_edit_batch(e, host, N, C, H, W, a, out, mask);
  if (base) *base = std::move(host);
  return {Tensor::from_vector(out, x0.shape(), z.device()), Tensor::from_vector(mask, x0.shape(), z.device())};
}

// Turns a generator's parameters' gradients off (frozen) and back on when it goes out of scope;
// eval mode for BatchNorm's running statistics, the training mode restored too.
class FrozenGenerator {
 public:
  explicit FrozenGenerator(GanGenerator& g) : g_(g), training_(g.is_training()), frozen_(g.parameters()) {
    g_.eval();
  }
  ~FrozenGenerator() { g_.train(training_); }
  FrozenGenerator(const FrozenGenerator&) = delete;
  FrozenGenerator& operator=(const FrozenGenerator&) = delete;

 private:
  GanGenerator& g_;
  bool training_;
  FrozenParameters frozen_;
};

}  // namespace

Tensor steer_loss(GanGenerator& g, SteerEdit e, const Tensor& z, const std::vector<float>& a, const Tensor& w,
                  const std::vector<int32_t>& labels) {
  const auto [target, mask] = edit_targets(g, e, z, a, labels);
  const Tensor x = generator_unit(g, walk_codes(z, a, w), labels);
  // The target is 0 where the mask is, so m * x - target = m * (x - e(G(z), a)).
  const double valid = static_cast<double>(sum(mask).item());
  return scale(mse_loss(mul(x, mask), target, Reduction::Sum), static_cast<float>(1.0 / std::max(valid, 1.0)));
}

SteerTrainResult train_linear_walk(GanGenerator& g, const SteerTrainOptions& o) {
  if (o.steps < 1 || o.batch < 1) throw std::invalid_argument("train_linear_walk: steps and batch must be >= 1");
  if (!(o.lo < o.hi)) throw std::invalid_argument("train_linear_walk: the range of a must have lo < hi");
  FrozenGenerator frozen(g);
  const int64_t nz = g.config().nz;
  const Device device = g.parameters().front().device();
  SteerTrainResult r;
  r.w = Tensor::zeros({1, nz}, device);
  r.w.set_requires_grad(true);
  optim::AdamOptions ao;
  ao.lr = o.lr;
  optim::Adam adam({r.w}, ao);
  Generator zgen(o.seed, 0), agen(o.seed, 1);
  const std::vector<int32_t> labels = g.config().conditional() ? g.config().labels(o.batch, -1) : std::vector<int32_t>{};
  double acc = 0;
  int64_t count = 0;
  for (int64_t step = 1; step <= o.steps; ++step) {
    const Tensor z = randn({o.batch, nz}, zgen, device);
    std::vector<float> a = rand({o.batch}, agen).to_vector();  // U(0, 1] -> U(lo, hi]
    for (float& v : a) v = static_cast<float>(o.lo + (o.hi - o.lo) * static_cast<double>(v));
    adam.zero_grad();
    const Tensor loss = steer_loss(g, o.edit, z, a, r.w, labels);
    loss.backward();
    adam.step();
    acc += loss.item();
    ++count;
    if (step % std::max<int64_t>(o.log_every, 1) == 0 || step == o.steps) {
      r.loss.push_back(acc / static_cast<double>(count));
      r.loss_step.push_back(step);
      acc = 0;
      count = 0;
    }
  }
  r.w = r.w.detach();
  return r;
}

double edit_statistic(SteerEdit e, const float* image, int64_t C, int64_t H, int64_t W) {
  const int64_t P = H * W;
  double total = 0, sy = 0, sx = 0;
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t y = 0; y < H; ++y) {
      for (int64_t x = 0; x < W; ++x) {
        const double v = image[c * P + y * W + x];
        total += v;
        sy += v * static_cast<double>(y);
        sx += v * static_cast<double>(x);
      }
    }
  }
  if (e == SteerEdit::Brightness) return total / static_cast<double>(C * P);
  if (total <= 1e-9) return std::nan("");  // a black image has no centroid
  const double my = sy / total, mx = sx / total;
  if (e == SteerEdit::ShiftX) return mx;
  if (e == SteerEdit::ShiftY) return my;
  double r2 = 0;  // zoom: the radius of gyration about the centroid
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t y = 0; y < H; ++y) {
      for (int64_t x = 0; x < W; ++x) {
        const double dy = static_cast<double>(y) - my, dx = static_cast<double>(x) - mx;
        r2 += image[c * P + y * W + x] * (dy * dy + dx * dx);
      }
    }
  }
  return std::sqrt(r2 / total);
}

NonlinearWalk::NonlinearWalk(int64_t nz, int64_t hidden, double eps_pos, double eps_neg, Generator& init)
    : eps_pos(eps_pos), eps_neg(eps_neg) {
  if (!(eps_neg < 0 && 0 < eps_pos)) throw std::invalid_argument("NonlinearWalk: the step sizes must be eps_neg < 0 < eps_pos");
  if (nz < 1 || hidden < 1) throw std::invalid_argument("NonlinearWalk: nz and hidden must be >= 1");
  auto mlp = [&] {
    auto last = std::make_shared<nn::Linear>(hidden, nz, init);
    last->weight.zero_();  // f = identity at the start
    last->bias.zero_();
    return std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<Layer>>{
        std::make_shared<nn::Linear>(nz, hidden, init), std::make_shared<nn::ReLU>(), last});
  };
  pos_ = register_module("pos", mlp());
  neg_ = register_module("neg", mlp());
}

namespace {

// The squared norm of each row of a (N, D) host copy.
std::vector<double> row_norms2(const std::vector<float>& v, int64_t N, int64_t D) {
  std::vector<double> out(static_cast<size_t>(N), 0.0);
  for (int64_t i = 0; i < N; ++i)
    for (int64_t d = 0; d < D; ++d) out[static_cast<size_t>(i)] += static_cast<double>(v[static_cast<size_t>(i * D + d)]) * v[static_cast<size_t>(i * D + d)];
  return out;
}

}  // namespace

Tensor NonlinearWalk::walk(const Tensor& z, int64_t n) {
  // Each step is put back on the sphere of z's norm, as the paper's code does (z_step * |z| /
  // |z_step|): a prior draw's norm is what the generator has seen, and without this the steps grow
  // until G draws blurred averages. The engine has no per-row norm op, so the scale |z| / |h| is
  // computed on the host and applied as a constant: the forward pass is exact, the backward pass
  // leaves out the scale's own dependence on h (the radial part of the gradient, which the
  // projection discards anyway).
  const int64_t N = z.size(0), D = z.size(1);
  const std::vector<double> target = row_norms2(z.to_vector(), N, D);
  Tensor h = z;
  nn::Sequential& net = n > 0 ? *pos_ : *neg_;
  for (int64_t k = 0; k < (n > 0 ? n : -n); ++k) {
    h = add(h, net.forward(h));
    const std::vector<double> now = row_norms2(h.to_vector(), N, D);
    std::vector<float> factor(static_cast<size_t>(N * D));
    for (int64_t i = 0; i < N; ++i) {
      const double f = std::sqrt(target[static_cast<size_t>(i)] / std::max(now[static_cast<size_t>(i)], 1e-30));
      std::fill(factor.begin() + i * D, factor.begin() + (i + 1) * D, static_cast<float>(f));
    }
    h = mul(h, Tensor::from_vector(factor, {N, D}, z.device()));
  }
  return h;
}

int64_t NonlinearWalk::steps_for(double a) const {
  return static_cast<int64_t>(std::llround(a / (a >= 0 ? eps_pos : eps_neg))) * (a >= 0 ? 1 : -1);
}

SteerTrainResult train_nonlinear_walk(GanGenerator& g, NonlinearWalk& f, const SteerTrainOptions& o) {
  if (o.steps < 1 || o.batch < 1) throw std::invalid_argument("train_nonlinear_walk: steps and batch must be >= 1");
  const int64_t max_pos = std::max<int64_t>(1, std::llround(o.hi / f.eps_pos));
  const int64_t max_neg = std::max<int64_t>(1, std::llround(o.lo / f.eps_neg));
  FrozenGenerator frozen(g);
  const int64_t nz = g.config().nz;
  const Device device = g.parameters().front().device();
  f.to(device);
  f.train();
  optim::AdamOptions ao;
  ao.lr = o.lr;
  optim::Adam adam(f.parameters(), ao);
  Generator zgen(o.seed, 0), ngen(o.seed, 1);
  const std::vector<int32_t> labels = g.config().conditional() ? g.config().labels(o.batch, -1) : std::vector<int32_t>{};
  SteerTrainResult r;
  double acc = 0;
  int64_t count = 0;
  for (int64_t step = 1; step <= o.steps; ++step) {
    const Tensor z = randn({o.batch, nz}, zgen, device);
    // One of the 2 * max steps counts, uniformly: U(0, 1] scaled and rounded up.
    const double u = rand({1}, ngen).to_vector()[0];
    const int64_t k = std::clamp<int64_t>(static_cast<int64_t>(std::ceil(u * static_cast<double>(max_pos + max_neg))), 1, max_pos + max_neg);
    const int64_t n = k <= max_pos ? k : -(k - max_pos);
    const double a = n > 0 ? static_cast<double>(n) * f.eps_pos : static_cast<double>(-n) * f.eps_neg;
    const std::vector<float> av(static_cast<size_t>(o.batch), static_cast<float>(a));
    const auto [target, mask] = edit_targets(g, o.edit, z, av, labels);
    const Tensor x = generator_unit(g, f.walk(z, n), labels);
    const double valid = static_cast<double>(sum(mask).item());
    const Tensor loss = scale(mse_loss(mul(x, mask), target, Reduction::Sum), static_cast<float>(1.0 / std::max(valid, 1.0)));
    adam.zero_grad();
    loss.backward();
    adam.step();
    acc += loss.item();
    ++count;
    if (step % std::max<int64_t>(o.log_every, 1) == 0 || step == o.steps) {
      r.loss.push_back(acc / static_cast<double>(count));
      r.loss_step.push_back(step);
      acc = 0;
      count = 0;
    }
  }
  f.eval();
  return r;
}

std::vector<WalkPoint> measure_walk(GanGenerator& g, SteerEdit e, const Tensor& z, const Tensor& w,
                                    const Tensor& random, const std::vector<double>& as, int64_t batch) {
  auto line = [](const Tensor& dir) {
    return [dir](const Tensor& zb, double a) {
      return walk_codes(zb, std::vector<float>(static_cast<size_t>(zb.size(0)), static_cast<float>(a)), dir);
    };
  };
  return measure_walk(g, e, z, WalkFn(line(w)), WalkFn(line(random)), as, batch);
}

std::vector<WalkPoint> measure_walk(GanGenerator& g, SteerEdit e, const Tensor& z, const WalkFn& walked,
                                    const WalkFn& random, const std::vector<double>& as, int64_t batch) {
  FrozenGenerator frozen(g);
  NoGradGuard no_grad;
  const int64_t N = z.size(0);
  std::vector<WalkPoint> points;
  for (double a : as) {
    WalkPoint p;
    p.a = a;
    double valid_total = 0, sq_learned = 0, sq_random = 0, sq_identity = 0;
    double stat_n = 0;
    for (int64_t b0 = 0; b0 < N; b0 += batch) {
      const int64_t n = std::min(batch, N - b0);
      const Tensor zb = z.slice(b0, b0 + n);
      const std::vector<float> av(static_cast<size_t>(n), static_cast<float>(a));
      const std::vector<int32_t> labels = g.config().conditional() ? g.config().labels(n, -1) : std::vector<int32_t>{};
      std::vector<float> base;
      const auto [target_t, mask_t] = edit_targets(g, e, zb, av, labels, &base);
      const std::vector<float> target = target_t.to_vector(), mask = mask_t.to_vector();
      const std::vector<float> learned = generator_unit(g, walked(zb, a), labels).to_vector();
      const std::vector<float> rnd = generator_unit(g, random(zb, a), labels).to_vector();
      const int64_t C = target_t.size(1), H = target_t.size(2), W = target_t.size(3), S = C * H * W;
      for (int64_t i = 0; i < n; ++i) {
        double v = 0, l = 0, r = 0, id = 0;
        for (int64_t k = i * S; k < (i + 1) * S; ++k) {
          const size_t u = static_cast<size_t>(k);
          const double m = mask[u], t = target[u];
          v += m;
          l += m * (learned[u] - t) * (learned[u] - t);
          r += m * (rnd[u] - t) * (rnd[u] - t);
          id += m * (base[u] - t) * (base[u] - t);
        }
        valid_total += v;
        sq_learned += l;
        sq_random += r;
        sq_identity += id;
        p.l2_learned += std::sqrt(l);
        p.l2_random += std::sqrt(r);
        p.l2_identity += std::sqrt(id);
        // The achieved transformation: a change (shift), a ratio (zoom) or a level (brightness).
        const double s0 = edit_statistic(e, base.data() + i * S, C, H, W);
        const double sl = edit_statistic(e, learned.data() + i * S, C, H, W);
        const double sr = edit_statistic(e, rnd.data() + i * S, C, H, W);
        const double st = edit_statistic(e, target.data() + i * S, C, H, W);
        if (!std::isfinite(s0) || !std::isfinite(sl) || !std::isfinite(sr) || !std::isfinite(st) ||
            (e == SteerEdit::Zoom && s0 <= 1e-9)) {
          continue;
        }
        if (e == SteerEdit::Brightness) {
          p.achieved += sl, p.random_achieved += sr, p.target += st;
        } else if (e == SteerEdit::Zoom) {
          p.achieved += sl / s0, p.random_achieved += sr / s0, p.target += st / s0;
        } else {
          p.achieved += sl - s0, p.random_achieved += sr - s0, p.target += st - s0;
        }
        stat_n += 1;
      }
    }
    const double vt = std::max(valid_total, 1.0);
    p.mse_learned = sq_learned / vt;
    p.mse_random = sq_random / vt;
    p.mse_identity = sq_identity / vt;
    p.l2_learned /= static_cast<double>(N);
    p.l2_random /= static_cast<double>(N);
    p.l2_identity /= static_cast<double>(N);
    if (stat_n > 0) {
      p.achieved /= stat_n;
      p.random_achieved /= stat_n;
      p.target /= stat_n;
    }
    points.push_back(p);
  }
  return points;
}

}  // namespace ll::models
