// main.cpp of bench_models: Google Benchmark's main, after two things of our own.
//   bench_models --print-blas-core    prints OpenBLAS's kernel set (after the restart below) and
//                                     exits: bench/*_vs_pytorch.sh give PyTorch the same one
// Where OpenBLAS took this processor for an older one, the bench restarts once with the kernels
// the processor supports (kernels/gemm.h), as the latentlab program does; the kernel set is also
// in the output's context ("blas_core").
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>

#include "kernels/gemm.h"

int main(int argc, char** argv) {
  ll::kernels::cpu::restart_with_better_blas_core(argv);
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--print-blas-core") == 0) {
      std::printf("%s\n", ll::kernels::cpu::blas_core_name().c_str());
      return 0;
    }
  }
  benchmark::AddCustomContext("blas_core", ll::kernels::cpu::blas_core_name());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
