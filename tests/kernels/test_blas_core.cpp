// test_blas_core.cpp: OpenBLAS's kernel set and the restart with a better one (kernels/gemm.h).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "kernels/gemm.h"

namespace ll::kernels::cpu {
namespace {

TEST(BlasCore, NamesTheKernelSetInUse) { EXPECT_FALSE(blas_core_name().empty()); }

TEST(BlasCore, NothingToChooseWhenOpenblasCoretypeIsSet) {
  const char* before = std::getenv("OPENBLAS_CORETYPE");
  const std::string saved = before ? before : "";
  ASSERT_EQ(setenv("OPENBLAS_CORETYPE", "Prescott", 1), 0);
  EXPECT_EQ(better_blas_core(), "");
  restart_with_better_blas_core(nullptr);  // returns: nothing to do (and no argv to restart with)
  if (before) {
    setenv("OPENBLAS_CORETYPE", saved.c_str(), 1);
  } else {
    unsetenv("OPENBLAS_CORETYPE");
  }
}

TEST(BlasCore, SuggestsOnlyAvx2OrAvx512Sets) {
  const std::string better = better_blas_core();
  EXPECT_TRUE(better.empty() || better == "Haswell" || better == "SkylakeX") << better;
  // A suggestion only replaces a set without AVX2; a set that has it is kept.
  if (blas_core_name() == "Haswell" || blas_core_name() == "SkylakeX" || blas_core_name() == "Cooperlake" ||
      blas_core_name() == "Zen") {
    EXPECT_EQ(better, "");
  }
}

}  // namespace
}  // namespace ll::kernels::cpu
