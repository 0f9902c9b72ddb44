// data_parallel.h: what a training step needs to run data-parallel (several ranks, each a shard of
// the batch) or micro-batched (one process, the batch in parts, one after the other), with the same
// numbers either way.
//
// The batch of B rows is split into contiguous parts (shard_rows); each part's gradient is computed
// on its own (the losses are sums over images, so the batch's gradient is the sum of the parts'),
// and the parts' gradients are added in the communicator's fixed order (engine/dist/communicator.h):
// first a rank's own micro-batches (sum_in_fixed_order), then across ranks (all_reduce_sum). So a
// P-rank run equals, bit for bit, the one-process run with P micro-batches, which `latentlab train
// --micro-batches P` is; and it equals the plain one-process run (one part) to float32 rounding of
// the sums' order (a few ulps of each gradient element; docs/distributed.md states the bound the test
// holds it to). This is PyTorch DistributedDataParallel's arrangement (Li et al. 2020, "PyTorch
// Distributed: experiences on accelerating data parallel training", VLDB), with the gradient as one
// flat buffer (the communicator chunks it, 2^20 floats at a time) instead of DDP's overlapping buckets:
// the models here are small enough that the all-reduce of the whole gradient after the backward pass
// costs a few milliseconds (bench/results/dist_cpu.md).
#pragma once
#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "engine/dist/communicator.h"
#include "engine/nn/layers.h"
#include "engine/nn/module.h"
#include "engine/ops/norm.h"
#include "engine/tensor.h"

namespace ll::dist {

// Rows [begin, end) of part `part` of `rows` rows split into `parts` contiguous parts:
// begin = floor(part * rows / parts). The sizes differ by at most one; a part is empty when
// rows < parts.
struct Rows {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
Rows shard_rows(int64_t rows, int64_t parts, int64_t part);

// The gradients of `params` and a few scalars (a step's loss figures) as one flat host buffer per
// part, added up as the header says.
class GradientSum {
 public:
  GradientSum(std::vector<Tensor> params, int64_t scalars);
  // Copies the parameters' current gradients (zeros for a parameter that has none) and `scalars`
  // into a new part.
  void add_part(const std::vector<float>& scalars);
  // A part with no rows: zeros.
  void add_empty_part();
  // Adds this rank's parts in the fixed order, then the ranks' sums with comm.all_reduce_sum, writes
  // each parameter's total gradient (on its own device) and returns the scalars' totals. Clears the
  // parts for the next step.
  std::vector<float> finish(Communicator& comm);
  // Wall-clock seconds spent in comm.all_reduce_sum by finish() since the last call (the cost of
  // the exchange, waiting for slower ranks included), and the number of finish() calls; then zero.
  std::pair<double, int64_t> take_exchange_time();

 private:
  double exchange_s_ = 0;
  int64_t exchanges_ = 0;
  std::vector<Tensor> params_;
  int64_t scalars_ = 0, total_ = 0;
  std::vector<std::vector<float>> parts_;
};

// Rank 0's values of `tensors` (parameters, BatchNorm's running statistics) copied into every rank's,
// so that all replicas start from the same state whatever each loaded or initialized.
void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors);
// broadcast_tensors of every parameter and buffer of each module, in order.
void broadcast_modules(Communicator& comm, const std::vector<const Module*>& modules);

// Synchronized BatchNorm (engine/ops/norm.h sync_batch_norm): a group over comm's ranks, whose
// exchanges are comm.all_gather (host memory on every backend). comm must outlive the group.
std::shared_ptr<const BatchNormGroup> batch_norm_group(Communicator& comm);
// Sets every BatchNorm layer of the modules and their submodules to synchronize over `group`
// (nullptr: back to per-process statistics). Returns how many layers it set.
int64_t synchronize_batch_norm(const std::vector<Module*>& modules, const std::shared_ptr<const BatchNormGroup>& group);

// Element-wise sum over the ranks of a few doubles (a test pass's sums), in rank order on every
// rank (through all_gather: exact doubles, the same bits everywhere).
std::vector<double> sum_over_ranks(Communicator& comm, const std::vector<double>& values);

}  // namespace ll::dist
