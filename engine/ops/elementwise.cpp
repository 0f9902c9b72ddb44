#include "engine/ops/elementwise.h"

#include "engine/autograd.h"
#include "engine/ops/dispatch.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"

namespace ll {

namespace {
void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  check_arg(a.shape() == b.shape(), op, "shapes differ: " + a.str() + " and " + b.str());
  check_same_device(op, {&a, &b});
}

int64_t normalize_dim(const char* op, const Tensor& x, int64_t dim) {
  const int64_t d = dim < 0 ? dim + x.dim() : dim;
  check_arg(d >= 0 && d < x.dim(), op, "dimension " + std::to_string(dim) + " out of range for " + x.str());
  return d;
}

// x viewed as (outer, mid, inner) around dimension d.
void split_at(const Shape& s, int64_t d, int64_t& outer, int64_t& mid, int64_t& inner) {
  outer = 1;
  inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= s[static_cast<size_t>(i)];
  mid = s[static_cast<size_t>(d)];
  for (size_t i = static_cast<size_t>(d) + 1; i < s.size(); ++i) inner *= s[i];
}
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  check_same_shape("add", a, b);
  Tensor y = Tensor::empty_like(a);
  LL_KERNEL(y.device(), add, a.data(), b.data(), y.data(), y.numel());
  return record(y, "add", {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, g}; });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  check_same_shape("sub", a, b);
  Tensor y = Tensor::empty_like(a);
  LL_KERNEL(y.device(), sub, a.data(), b.data(), y.data(), y.numel());
  return record(y, "sub", {a, b}, [](const Tensor& g) { return std::vector<Tensor>{g, neg(g)}; });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  check_same_shape("mul", a, b);
  Tensor y = Tensor::empty_like(a);
  LL_KERNEL(y.device(), mul, a.data(), b.data(), y.data(), y.numel());
  return record(y, "mul", {a, b}, [a = a.detach(), b = b.detach()](const Tensor& g) {
    return std::vector<Tensor>{mul(g, b), mul(g, a)};
  });
}

Tensor scale(const Tensor& x, float alpha) {
  check_same_device("scale", {&x});
  Tensor y = Tensor::empty_like(x);
  LL_KERNEL(y.device(), scale, x.data(), alpha, y.data(), y.numel());
  return record(y, "scale", {x}, [alpha](const Tensor& g) { return std::vector<Tensor>{scale(g, alpha)}; });
}

Tensor add_scalar(const Tensor& x, float c) {
  check_same_device("add_scalar", {&x});
  Tensor y = Tensor::empty_like(x);
  LL_KERNEL(y.device(), add_scalar, x.data(), c, y.data(), y.numel());
  return record(y, "add_scalar", {x}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
}

Tensor neg(const Tensor& x) { return scale(x, -1.0f); }

Tensor exp(const Tensor& x) {
  check_same_device("exp", {&x});
  Tensor y = Tensor::empty_like(x);
  LL_KERNEL(y.device(), exp, x.data(), y.data(), y.numel());
  // d exp(x) = exp(x): reuse the output's values (detached: no reference cycle).
  return record(y, "exp", {x}, [y = y.detach()](const Tensor& g) { return std::vector<Tensor>{mul(g, y)}; });
}

Tensor sum(const Tensor& x) {
  check_same_device("sum", {&x});
  Tensor y = Tensor::empty({}, x.device());
  LL_KERNEL(y.device(), sum_all, x.data(), x.numel(), y.data());
  const Shape s = x.shape();
  return record(y, "sum", {x}, [s](const Tensor& g) {
    if (g.is_cpu()) return std::vector<Tensor>{Tensor::full(s, g.item(), g.device())};
    // On the GPU the upstream value stays there: broadcast (1, 1) -> (1, n, 1), as sum_dim's backward.
    Tensor gx = Tensor::empty(s, g.device());
    LL_KERNEL(gx.device(), broadcast_dim, g.data(), gx.data(), 1, gx.numel(), 1);
    return std::vector<Tensor>{gx};
  });
}

Tensor mean(const Tensor& x) {
  check_arg(x.numel() > 0, "mean", "of an empty tensor");
  return scale(sum(x), 1.0f / static_cast<float>(x.numel()));
}

Tensor sum(const Tensor& x, int64_t dim, bool keepdim) {
  check_same_device("sum", {&x});
  const int64_t d = normalize_dim("sum", x, dim);
  int64_t outer, mid, inner;
  split_at(x.shape(), d, outer, mid, inner);
  Shape out = x.shape();
  if (keepdim) {
    out[static_cast<size_t>(d)] = 1;
  } else {
    out.erase(out.begin() + d);
  }
  Tensor y = Tensor::empty(out, x.device());
  LL_KERNEL(y.device(), sum_dim, x.data(), y.data(), outer, mid, inner);
  const Shape s = x.shape();
  return record(y, "sum_dim", {x}, [s, outer, mid, inner](const Tensor& g) {
    Tensor gx = Tensor::empty(s, g.device());
    LL_KERNEL(gx.device(), broadcast_dim, g.data(), gx.data(), outer, mid, inner);
    return std::vector<Tensor>{gx};
  });
}

Tensor mean(const Tensor& x, int64_t dim, bool keepdim) {
  const int64_t d = normalize_dim("mean", x, dim);
  check_arg(x.size(d) > 0, "mean", "over an empty dimension of " + x.str());
  return scale(sum(x, d, keepdim), 1.0f / static_cast<float>(x.size(d)));
}

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
  check_arg(!xs.empty(), "cat", "no tensors to join");
  const Tensor& first = xs[0];
  const int64_t d = normalize_dim("cat", first, dim);
  Shape out = first.shape();
  out[static_cast<size_t>(d)] = 0;
  for (const Tensor& x : xs) {
    check_arg(x.dim() == first.dim(), "cat", "ranks differ: " + first.str() + " and " + x.str());
    check_same_device("cat", {&first, &x});
    for (int64_t i = 0; i < x.dim(); ++i) {
      check_arg(i == d || x.size(i) == first.size(i), "cat",
                "sizes differ outside dimension " + std::to_string(d) + ": " + first.str() + " and " + x.str());
    }
    out[static_cast<size_t>(d)] += x.size(d);
  }
  Tensor y = Tensor::empty(out, first.device());
  int64_t outer, mid, inner;
  split_at(out, d, outer, mid, inner);
  const int64_t row = mid * inner;  // one "outer" row of the output
  std::vector<int64_t> starts;
  std::vector<int64_t> lengths;
  int64_t at = 0;
  for (const Tensor& x : xs) {
    const int64_t len = x.size(d) * inner;
    LL_KERNEL(y.device(), copy_rows, x.data(), len, 0, y.data(), row, at, outer, len);
    starts.push_back(at / inner);
    lengths.push_back(x.size(d));
    at += len;
  }
  // Each input's gradient is its own range of the output's gradient.
  return record(y, "cat", xs, [starts, lengths, d](const Tensor& g) {
    std::vector<Tensor> gs;
    for (size_t i = 0; i < starts.size(); ++i) gs.push_back(narrow(g, d, starts[i], lengths[i]));
    return gs;
  });
}

Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length) {
  check_same_device("narrow", {&x});
  const int64_t d = normalize_dim("narrow", x, dim);
  check_arg(start >= 0 && length >= 0 && start + length <= x.size(d), "narrow",
            "range [" + std::to_string(start) + ", " + std::to_string(start + length) +
                ") out of bounds for dimension " + std::to_string(d) + " of " + x.str());
  int64_t outer, mid, inner;
  split_at(x.shape(), d, outer, mid, inner);
  Shape out = x.shape();
  out[static_cast<size_t>(d)] = length;
  Tensor y = Tensor::empty(out, x.device());
  LL_KERNEL(y.device(), copy_rows, x.data(), mid * inner, start * inner, y.data(), length * inner, 0, outer, length * inner);
  const Shape s = x.shape();
  return record(y, "narrow", {x}, [s, outer, mid, inner, start, length](const Tensor& g) {
    Tensor gx = Tensor::zeros(s, g.device());
    LL_KERNEL(gx.device(), copy_rows, g.data(), length * inner, 0, gx.data(), mid * inner, start * inner, outer, length * inner);
    return std::vector<Tensor>{gx};
  });
}

}  // namespace ll
