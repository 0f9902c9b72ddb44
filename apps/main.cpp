// main.cpp: the latentlab program. Everything lives in the subcommands (apps/cmd_*.cpp).
#include "apps/commands.h"
#include "kernels/gemm.h"

int main(int argc, char** argv) {
  // Where OpenBLAS took this processor for an older one, restart once with its right kernels
  // (kernels/gemm.h); otherwise this does nothing.
  ll::kernels::cpu::restart_with_better_blas_core(argv);
  return ll::app::run_cli(argc, argv);
}
