// dist_worker.cpp: the program that test_dist_faults.cpp starts under mpirun, one fault per mode.
// Rank 1 misbehaves; rank 0 (and any other) does an all-reduce and a barrier, and prints
// "rank R: finished" if they return. Like the latentlab program, main catches what is thrown,
// prints one line and returns 1, and the communicator lives inside the try.
//   ok          every rank does its part: the job ends with status 0
//   exit-early  rank 1 exits with status 3 before the all-reduce (a crash)
//   throw       rank 1 throws before the all-reduce (an error on one rank)
//   hang        rank 1 sleeps for 10 minutes instead (a rank stuck elsewhere)
//   mismatch    rank 1's configuration differs (check_same at start)
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/dist/communicator.h"

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "ok";
  int rank = -1;
  try {
    auto comm = ll::dist::make_communicator("auto");
    rank = comm->rank();
    comm->check_same("config", mode == "mismatch" && rank == 1 ? "{\"lr\": 0.001}" : "{\"lr\": 0.0002}");
    if (rank == 1) {
      if (mode == "exit-early") ::_exit(3);
      if (mode == "throw") throw std::runtime_error("cannot read data/train.idx");
      if (mode == "hang") std::this_thread::sleep_for(std::chrono::minutes(10));
    }
    std::vector<float> gradient(1000, 1.0f);
    comm->all_reduce_sum(gradient.data(), static_cast<int64_t>(gradient.size()));
    comm->barrier();
    std::printf("rank %d: finished (sum %g)\n", rank, gradient[0]);
    std::fflush(stdout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "latentlab: rank %d: %s\n", rank, e.what());
    return 1;
  }
  return 0;
}
