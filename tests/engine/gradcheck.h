// gradcheck.h: the one finite-difference gradient check of the test suite.
//
// For a function f of some leaf tensors (an op, a module, a whole model), the check compares the
// gradients autograd computes with central differences of the forward pass. The output is reduced
// to a scalar by a fixed random projection, L = <f(x), R>: backward(R) gives dL/dx, and
//   dL/dx_i ~ (L(x + h e_i) - L(x - h e_i)) / 2h
// with L evaluated in float64 on the host. A random R (not all ones) makes every output element
// matter with a different weight, so a gradient that is wrong for one element, or transposed, or
// off by a constant factor, shows.
//
// The forward kernels run in float32, so h is 1e-2 (the float32 rounding of L, divided by 2h,
// stays near 1e-5) and the tolerance is |analytic - numeric| <= atol + rtol * |numeric|
// (defaults 2e-4 and 2e-3; the correct ops measure at most a fifth of that, a backward off by 1% fails). Test inputs keep away from the kinks of ReLU-like functions by more
// than h. Large inputs are checked at a deterministic sample of positions.
#pragma once
#include <cmath>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/autograd.h"
#include "engine/tensor.h"

namespace ll::test {

struct GradCheckOptions {
  double h = 1e-2;
  double atol = 2e-4;
  double rtol = 2e-3;
  int64_t max_checks_per_input = 48;  // positions checked per input tensor (all when smaller)
  uint32_t seed = 1234;
};

// `inputs` are leaf tensors with requires_grad (on the CPU); `f` computes the output from them
// (reading them by reference, so that perturbing their values in place changes the output).
inline ::testing::AssertionResult check_gradients(const std::vector<Tensor>& inputs,
                                                  const std::function<Tensor()>& f,
                                                  GradCheckOptions opt = {}) {
  std::mt19937 gen(opt.seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);

  // Analytic gradients.
  for (const Tensor& x : inputs) const_cast<Tensor&>(x).zero_grad();
  Tensor y = f();
  if (!y.requires_grad()) return ::testing::AssertionFailure() << "the output does not require grad";
  std::vector<float> r(static_cast<size_t>(y.numel()));
  for (float& v : r) v = dist(gen);
  const Tensor R = Tensor::from_vector(r, y.shape());
  y.backward(R);

  auto L = [&]() {
    NoGradGuard no_grad;
    const std::vector<float> out = f().to_vector();
    double s = 0.0;
    for (size_t i = 0; i < out.size(); ++i) s += static_cast<double>(out[i]) * r[i];
    return s;
  };

  std::ostringstream failures;
  int bad = 0, checked = 0;
  double worst = 0.0;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    const Tensor g = x.grad();
    if (!g.defined()) {
      return ::testing::AssertionFailure() << "input " << k << " " << x.str() << " received no gradient";
    }
    const std::vector<float> analytic = g.to_vector();
    std::vector<int64_t> positions;
    if (x.numel() <= opt.max_checks_per_input) {
      for (int64_t i = 0; i < x.numel(); ++i) positions.push_back(i);
    } else {
      std::uniform_int_distribution<int64_t> pick(0, x.numel() - 1);
      for (int64_t j = 0; j < opt.max_checks_per_input; ++j) positions.push_back(pick(gen));
    }
    float* p = x.data();
    for (int64_t i : positions) {
      const float saved = p[i];
      p[i] = static_cast<float>(saved + opt.h);
      const double plus = L();
      p[i] = static_cast<float>(saved - opt.h);
      const double minus = L();
      p[i] = saved;
      // The step actually taken in float32, not the nominal h.
      const double step = static_cast<double>(static_cast<float>(saved + opt.h)) -
                          static_cast<double>(static_cast<float>(saved - opt.h));
      const double numeric = (plus - minus) / step;
      const double a = analytic[static_cast<size_t>(i)];
      const double err = std::fabs(a - numeric);
      ++checked;
      worst = std::max(worst, err / (opt.atol + opt.rtol * std::fabs(numeric)));
      if (!(err <= opt.atol + opt.rtol * std::fabs(numeric))) {
        if (bad < 6) {
          failures << "\n  input " << k << " " << x.str() << " [" << i << "]: analytic " << a << ", numeric "
                   << numeric;
        }
        ++bad;
      }
    }
  }
  if (bad == 0) return ::testing::AssertionSuccess() << checked << " positions, worst error/tolerance " << worst;
  return ::testing::AssertionFailure() << bad << " of " << checked << " gradient positions off (atol " << opt.atol
                                       << ", rtol " << opt.rtol << ")" << failures.str();
}

}  // namespace ll::test
