// nccl_communicator.h: the NCCL backend of engine/dist: all_reduce_sum/all_reduce_mean on CUDA
// device memory, on the engine's compute stream (kernels/cuda_runtime.h); broadcast, all_gather,
// barrier and check_same on host memory over MPI. Built where the CUDA backend is built with nvcc
// and NCCL sits beside the CUDA toolkit (LATENTLAB_HAS_NCCL). Without MPI in the build it runs
// one rank (the host calls are then Local's): what a GPU machine without MPI can check.
//
// UNVERIFIED: this file compiles in CI, but it has not yet run on a GPU (our machines have none);
// the first GPU run of the distributed tests must check it (docs/distributed.md).
//
// Start-up, as llm.c bootstraps NCCL (and NCCL's "Creating a Communicator" describes): an MPI
// communicator first; the ranks on one host (same gethostname) take GPUs 0, 1, ... in rank order
// (cudaSetDevice, so this must be made before any tensor is put on a GPU, as the compute stream
// belongs to the device current when it is first used); rank 0 calls ncclGetUniqueId and MPI
// broadcasts the id; every rank calls ncclCommInitRank. More ranks on a host than GPUs is an error
// (NCCL does not support one device as two ranks: it may hang).
//
// all_reduce_sum is ncclAllReduce(ncclSum) in place on the compute stream; all_reduce_mean then
// divides by the rank count on the same stream (not ncclAvg, whose float rounding may differ from
// sum-then-divide). Both then wait for the stream, polling cudaStreamQuery and
// ncclCommGetAsyncError under the timeout of communicator.h: an NCCL error, or no completion in
// time, aborts the NCCL communicator (ncclCommAbort) and ends the process with one line. The wait
// makes the all-reduce synchronous: the training step cannot overlap communication with the
// backward pass yet. Order: NCCL's own (see communicator.h), not the fixed order of the MPI backend.
#pragma once
#include <memory>

#include "engine/dist/communicator.h"

namespace ll::dist {

struct NcclOptions {
  double timeout_s = -1;  // < 0: timeout_seconds()
};

std::unique_ptr<Communicator> make_nccl_communicator(const NcclOptions& options = {});

}  // namespace ll::dist
