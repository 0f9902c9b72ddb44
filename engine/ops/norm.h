// norm.h: batch and instance normalization (kernels/batchnorm.h, kernels/instancenorm.h have the
// formulas and PyTorch's rules).
#pragma once
#include <cstddef>
#include <functional>
#include <memory>

#include "engine/tensor.h"

namespace ll {

// x is (N, C), (N, C, L) or (N, C, H, W); statistics per channel (dimension 1).
// weight, bias: (C) or undefined (affine = false). running_mean, running_var: (C) buffers, updated
// in place in training mode (may be undefined: then training mode uses batch statistics only and
// eval mode is an error).
// training: normalize with the batch's statistics (biased variance) and update the running ones
// (unbiased variance, momentum as PyTorch: new = (1 - momentum) old + momentum batch).
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, float momentum = 0.1f, float eps = 1e-5f);

// Instance normalization (Ulyanov et al. 2016): x is (N, C, L) or (N, C, H, W); statistics per
// sample and channel over the L or H * W values (biased variance), y = xhat * weight_c + bias_c.
// weight, bias: (C), or both undefined (affine = false). No running statistics: PyTorch's
// InstanceNorm2d with track_running_stats = False, the same in training and evaluation. Needs more
// than one value per row (PyTorch: "Expected more than 1 spatial element when training").
Tensor instance_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, float eps = 1e-5f);

// Synchronized batch normalization (PyTorch's SyncBatchNorm): in data-parallel training each
// process holds a shard of the batch, and plain batch_norm normalizes each shard by its own
// statistics (DistributedDataParallel's default). sync_batch_norm normalizes every shard by the
// statistics of the whole batch, the union of the shards, so that P processes compute what one
// process computes on the whole batch (to float rounding), whatever the shard sizes. It exchanges
// per-channel figures twice: the shards' (count, mean, variance) in the forward, merged in rank
// order with the pairwise formula of Chan, Golub & LeVeque (1979, "Updating formulae and a pairwise
// algorithm for computing sample variances"); the shards' sum gy and sum gy * xhat in the backward,
// added in rank order, which give the batch-statistics terms of the input gradient
// (kernels/batchnorm.h). Both merges are in float64 over all_gather'ed values, in the same order on
// every process, so every process gets the same bits. The gradients of weight and bias are the
// shard's own sums, as for any parameter: the data-parallel step adds them over the processes with
// the other gradients.
//
// Every process of the group must call it at the same point, with the same channels; a shard may be
// empty (0 rows), but the batch needs more than one value per channel.
struct BatchNormGroup {
  int size = 1;  // processes in the group
  // Every process's `bytes` bytes in rank order: all[r * bytes ...] is rank r's `mine`
  // (dist::Communicator::all_gather, engine/dist/data_parallel.h batch_norm_group()).
  std::function<void(const void* mine, void* all, size_t bytes)> all_gather;
};

// Training mode only (eval mode normalizes with the running buffers, which are the same on every
// process: use batch_norm). The running buffers are updated with the batch's statistics.
Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                       const Tensor& running_var, const std::shared_ptr<const BatchNormGroup>& group,
                       float momentum = 0.1f, float eps = 1e-5f);

}  // namespace ll
