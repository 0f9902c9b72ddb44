// mpi_communicator.h: the MPI backend of engine/dist (host buffers), built where CMake's FindMPI
// finds MPI (LATENTLAB_HAS_MPI). No MPI header here: only mpi_communicator.cpp includes <mpi.h>.
//
// all_reduce_sum, a chunk of `chunk_elements` floats at a time (so its memory stays bounded):
//   1. the chunk is cut into P slices, rank j owning slice j (sizes differ by at most one);
//   2. MPI_Ialltoallv hands every rank's slice j to rank j, which then holds P rows, one per rank;
//   3. rank j sums its rows with sum_in_fixed_order (communicator.h) into its slice of the buffer;
//   4. MPI_Iallgatherv gives every rank every summed slice.
// Each element is summed by exactly one rank, in the fixed order, and copied to the others, so the
// result is the same bits on every rank whatever the timing; each rank sends and receives about
// 2 (P - 1) / P of the buffer (as a ring all-reduce does) and sums a P-th of it.
//
// MPI is initialized (MPI_THREAD_FUNNELED: only the thread that made the communicator calls MPI)
// when the first communicator is made and finalized when the last one is destroyed, after a
// barrier under the timeout, so that MPI_Finalize (which waits for every rank) cannot hang. MPI
// cannot be initialized twice in a process: keep one communicator for the life of the program.
// Destroyed during stack unwinding (an exception on its way out of main), the communicator leaves
// MPI as it is: the other ranks will not come to the barrier; this rank exits nonzero and mpirun
// stops the job.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/dist/communicator.h"

namespace ll::dist {

struct MpiOptions {
  double timeout_s = -1;  // how long a call waits for the other ranks; < 0: timeout_seconds()
  int64_t chunk_elements = int64_t{1} << 20;  // floats per step of all_reduce_sum (4 MiB)
};

// MPI_COMM_WORLD's processes (duplicated, so that our messages never meet the program's own).
// Throws std::runtime_error when MPI cannot be initialized or was finalized already.
std::unique_ptr<Communicator> make_mpi_communicator(const MpiOptions& options = {});

}  // namespace ll::dist
