// communicator.h: what data-parallel training needs from the other processes: each process (a rank)
// holds a replica of the model, computes the gradient of its shard of the batch, and the ranks add
// their gradients before the optimizer step. One process per device; the processes are started by
// an MPI launcher (`mpirun -np 2 latentlab train ...`). docs/distributed.md explains the whole.
//
// Backends (make_communicator picks one from `--dist auto|none|mpi|nccl`):
//   local   one process, size 1: every collective is a no-op. Always built.
//   mpi     host buffers over MPI (engine/dist/mpi_communicator.h). Built where CMake's FindMPI finds
//           MPI (LATENTLAB_HAS_MPI); its all-reduce has the fixed order below, bit for bit.
//   nccl    CUDA buffers over NCCL, bootstrapped over MPI (engine/dist/nccl_communicator.h). Built
//           where the CUDA backend is built with nvcc and NCCL sits beside the CUDA toolkit
//           (LATENTLAB_HAS_NCCL); one rank only where MPI is not found. Not yet run on a GPU.
//
// The reduction order (the determinism guarantee of the local and mpi backends)
// ------------------------------------------------------------------------------
// all_reduce_sum leaves in element i of every rank's buffer the float32 sum of the ranks' values
// x_0[i] ... x_{P-1}[i] taken in one fixed order that depends on P alone, never on timing, message
// sizes, chunking or which rank computes it:
//
//   sum(lo, hi) = x_lo                              when hi - lo == 1
//               = sum(lo, mid) + sum(mid, hi)       otherwise, mid = lo + (hi - lo + 1) / 2
//   result      = sum(0, P)
//
// that is, the ranks are split into two halves, the first the larger one when their number is odd,
// each half summed the same way, and the two sums added: P = 2 gives x0 + x1, P = 3 (x0 + x1) + x2,
// P = 4 (x0 + x1) + (x2 + x3), P = 5 ((x0 + x1) + x2) + (x3 + x4). Every addition is one IEEE-754
// float32 addition, rounded to nearest (the library is built with -ffp-contract=off, and an addition
// has no other rounding to choose). sum_in_fixed_order() below computes exactly this on one process:
// the training code reproduces a P-rank step in one process by computing the P shard gradients and
// passing them to it, and the tests compare the MPI result with it bit for bit. all_reduce_mean is
// that sum divided by P (one float32 division, so exact for P = 1, 2, 4, 8...).
//
// The NCCL backend does not promise this order: NCCL's ring starts each slice of the buffer at a
// different rank (github.com/NVIDIA/nccl/issues/157), so its sum agrees with the fixed order to
// float32 rounding only (about P ulps), although every rank gets the same bits.
//
// Faults
// ------
// Each blocking call waits at most timeout_seconds() (LATENTLAB_DIST_TIMEOUT_S, default 300 s; 0:
// no limit) for the other ranks. Past it the rank prints one line to stderr,
//   latentlab: rank 1: no answer from the other ranks within 300 s in all_reduce (did a rank die?); exiting
// and ends with exit status kNoAnswerExitStatus (124, as timeout(1) does), without unwinding: a
// collective in flight cannot be cancelled, and MPI_Finalize would wait for the missing rank again.
// mpirun then stops the other ranks, as it does when any rank exits nonzero, so a rank that dies
// (crash, kill, exception) stops the job within about a second and one that hangs within the limit.
// MPI errors end the process the same way, with MPI's own message in the line.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/device.h"

namespace ll::dist {

// The exit status of a rank that stopped waiting for the others (or saw an MPI or NCCL error).
constexpr int kNoAnswerExitStatus = 124;

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;  // 0 .. size() - 1
  virtual int size() const = 0;  // the number of processes
  virtual const char* backend() const = 0;  // "local", "mpi" or "nccl"
  // Where all_reduce_sum/all_reduce_mean's buffers live: Device::CPU for local and mpi,
  // Device::CUDA (device memory, on the engine's compute stream) for nccl. The other calls always
  // take host memory.
  virtual Device buffer_device() const = 0;

  // In place, on every rank: data[i] becomes the sum over ranks of data[i] in the fixed order above
  // (nccl: NCCL's order). Every rank must pass the same n; n may be 0 (nothing is exchanged).
  virtual void all_reduce_sum(float* data, int64_t n) = 0;
  // all_reduce_sum, then each element divided by size().
  virtual void all_reduce_mean(float* data, int64_t n) = 0;
  // Rank `root`'s n bytes into every rank's `bytes`. Throws std::invalid_argument for a root
  // outside 0 .. size() - 1.
  virtual void broadcast(void* bytes, size_t n, int root) = 0;
  // Every rank's n bytes, in rank order: all[r * n .. r * n + n) is rank r's `mine`.
  virtual void all_gather(const void* mine, void* all, size_t n) = 0;
  // Returns when every rank has called it.
  virtual void barrier() = 0;

  // Checks that every rank has the same `text` under the key `what` (e.g. "config" and the run's
  // configuration as JSON): rank 0's text is broadcast and compared byte for byte on every rank.
  // When one differs, every rank throws the same std::runtime_error, naming the key, the first rank
  // whose text differs and where ("--dist: ranks disagree on config: rank 1 differs from rank 0 at
  // character 12: rank 0 has ..., rank 1 has ..."). Every rank must call it with the same `what`
  // (a different key counts as a difference).
  void check_same(const std::string& what, const std::string& text);
};

// One process: rank 0 of 1; the collectives leave the data as it is (a mean divides by 1, which
// changes no float) and return at once. Buffers may be on either device.
class Local final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  const char* backend() const override { return "local"; }
  Device buffer_device() const override { return Device::CPU; }
  void all_reduce_sum(float* data, int64_t n) override;
  void all_reduce_mean(float* data, int64_t n) override;
  void broadcast(void* bytes, size_t n, int root) override;
  void all_gather(const void* mine, void* all, size_t n) override;
  void barrier() override {}
};

// The fixed order above on one process: out[i] = sum(0, count) of parts[0][i] .. parts[count-1][i].
// `out` may be one of the parts. count >= 1.
void sum_in_fixed_order(const float* const* parts, int count, float* out, int64_t n);

// --dist: "none" (Local), "mpi", "nccl" or "auto": MPI when an MPI launcher started this process
// (launcher_world_size() > 0) — NCCL instead where `device` is CUDA and the build has NCCL — and
// Local otherwise. Throws std::invalid_argument for another mode, and std::runtime_error, saying what
// to install or rebuild, for a backend this build lacks (and for "auto" under a launcher of 2 or more
// processes in a build without MPI: each process would otherwise train alone).
std::unique_ptr<Communicator> make_communicator(const std::string& mode, Device device = Device::CPU);

// True when the build has the MPI (LATENTLAB_HAS_MPI) or NCCL (LATENTLAB_HAS_NCCL) backend.
bool mpi_built();
bool nccl_built();

// The number of processes the MPI launcher says this job has, read from the environment it sets
// (Open MPI's mpirun: OMPI_COMM_WORLD_SIZE, docs.open-mpi.org "Environment variables set for MPI
// applications"; MPICH's Hydra, Intel MPI and Slurm's PMI: PMI_SIZE); 0 when there is none.
int launcher_world_size();

// How long a blocking call waits for the other ranks, in seconds: LATENTLAB_DIST_TIMEOUT_S when set
// (a number >= 0; 0 means no limit), else 300 — long enough for rank 0 to write a checkpoint or
// evaluate while the others wait at the next collective, short enough not to hold a machine for
// hours. Throws std::invalid_argument naming the variable for a value that is not such a number.
double timeout_seconds();

}  // namespace ll::dist
