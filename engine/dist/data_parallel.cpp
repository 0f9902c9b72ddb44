#include "engine/dist/data_parallel.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <utility>

#include "engine/autograd.h"

namespace ll::dist {

Rows shard_rows(int64_t rows, int64_t parts, int64_t part) {
  if (rows < 0 || parts < 1 || part < 0 || part >= parts) {
    throw std::invalid_argument("shard_rows: part " + std::to_string(part) + " of " + std::to_string(parts) + " of " +
                                std::to_string(rows) + " rows");
  }
  // (part * rows) fits int64 for any batch this program accepts (both below 2^20).
  return {part * rows / parts, (part + 1) * rows / parts};
}

GradientSum::GradientSum(std::vector<Tensor> params, int64_t scalars) : params_(std::move(params)), scalars_(scalars) {
  if (scalars < 0) throw std::invalid_argument("GradientSum: negative scalar count");
  total_ = scalars;
  for (const Tensor& p : params_) total_ += p.numel();
}

void GradientSum::add_part(const std::vector<float>& scalars) {
  if (static_cast<int64_t>(scalars.size()) != scalars_) {
    throw std::invalid_argument("GradientSum::add_part: " + std::to_string(scalars.size()) + " scalars, expected " +
                                std::to_string(scalars_));
  }
  std::vector<float> part(static_cast<size_t>(total_), 0.0f);
  size_t at = 0;
  for (const Tensor& p : params_) {
    const Tensor g = p.grad();
    if (g.defined()) {
      const std::vector<float> v = g.to_vector();  // to the host (a copy for CUDA gradients)
      std::copy(v.begin(), v.end(), part.begin() + static_cast<std::ptrdiff_t>(at));
    }
    at += static_cast<size_t>(p.numel());
  }
  std::copy(scalars.begin(), scalars.end(), part.begin() + static_cast<std::ptrdiff_t>(at));
  parts_.push_back(std::move(part));
}

void GradientSum::add_empty_part() { parts_.emplace_back(static_cast<size_t>(total_), 0.0f); }

std::vector<float> GradientSum::finish(Communicator& comm) {
  if (parts_.empty()) throw std::logic_error("GradientSum::finish with no part");
  std::vector<const float*> ptrs;
  for (const auto& p : parts_) ptrs.push_back(p.data());
  std::vector<float>& sum = parts_.front();
  sum_in_fixed_order(ptrs.data(), static_cast<int>(ptrs.size()), sum.data(), total_);
  const auto t0 = std::chrono::steady_clock::now();
  if (comm.buffer_device() == Device::CPU) {
    comm.all_reduce_sum(sum.data(), total_);
  } else {  // NCCL reduces device memory (unverified: no GPU has run this path yet)
    Tensor on_device = Tensor::from_vector(sum, {total_}, comm.buffer_device());
    comm.all_reduce_sum(on_device.data(), total_);
    sum = on_device.to_vector();
  }
  exchange_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++exchanges_;
  size_t at = 0;
  {
    NoGradGuard no_grad;
    for (Tensor& p : params_) {
      const std::vector<float> g(sum.begin() + static_cast<std::ptrdiff_t>(at),
                                 sum.begin() + static_cast<std::ptrdiff_t>(at + static_cast<size_t>(p.numel())));
      p.set_grad(Tensor::from_vector(g, p.shape(), p.device()));
      at += static_cast<size_t>(p.numel());
    }
  }
  std::vector<float> scalars(sum.begin() + static_cast<std::ptrdiff_t>(at), sum.end());
  parts_.clear();
  return scalars;
}

std::pair<double, int64_t> GradientSum::take_exchange_time() {
  const std::pair<double, int64_t> t{exchange_s_, exchanges_};
  exchange_s_ = 0;
  exchanges_ = 0;
  return t;
}

void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors) {
  if (comm.size() == 1) return;
  for (const Tensor& t : tensors) {
    std::vector<float> v = t.to_vector();
    comm.broadcast(v.data(), v.size() * sizeof(float), 0);
    if (comm.rank() != 0) {
      NoGradGuard no_grad;
      Tensor target = t;  // a handle to the same storage
      target.copy_(Tensor::from_vector(v, t.shape(), t.device()));
    }
  }
}

void broadcast_modules(Communicator& comm, const std::vector<const Module*>& modules) {
  std::vector<Tensor> state;
  for (const Module* m : modules) {
    for (const Tensor& p : m->parameters()) state.push_back(p);
    for (const auto& [name, buffer] : m->named_buffers()) state.push_back(buffer);
  }
  broadcast_tensors(comm, state);
}

std::shared_ptr<const BatchNormGroup> batch_norm_group(Communicator& comm) {
  auto group = std::make_shared<BatchNormGroup>();
  group->size = comm.size();
  group->all_gather = [&comm](const void* mine, void* all, size_t bytes) { comm.all_gather(mine, all, bytes); };
  return group;
}

namespace {
int64_t set_sync(Module& m, const std::shared_ptr<const BatchNormGroup>& group) {
  int64_t n = 0;
  if (auto* bn = dynamic_cast<nn::BatchNorm*>(&m)) {
    bn->sync = group;
    ++n;
  }
  for (const auto& [name, child] : m.children()) n += set_sync(*child, group);
  return n;
}
}  // namespace

int64_t synchronize_batch_norm(const std::vector<Module*>& modules, const std::shared_ptr<const BatchNormGroup>& group) {
  int64_t n = 0;
  for (Module* m : modules) n += set_sync(*m, group);
  return n;
}

std::vector<double> sum_over_ranks(Communicator& comm, const std::vector<double>& values) {
  const size_t n = values.size();
  std::vector<double> all(n * static_cast<size_t>(comm.size()));
  comm.all_gather(values.data(), all.data(), n * sizeof(double));
  std::vector<double> out(n, 0.0);
  for (int r = 0; r < comm.size(); ++r) {
    for (size_t i = 0; i < n; ++i) out[i] += all[static_cast<size_t>(r) * n + i];
  }
  return out;
}

}  // namespace ll::dist
