#!/usr/bin/env bash
# test.sh: from a fresh clone to a passing test run.
#   bash scripts/test.sh
# Installs missing Debian packages (as root; otherwise prints the apt-get line), configures with
# CMake (the CUDA backend too when nvcc is found), builds in parallel and runs the whole ctest suite;
# then the install check (scripts/install-check.sh), a CPU-only build, the GPU tests on the CUDA
# emulator, the CPU suite under ASan+UBSan and the fuzz targets (README.md says how long each takes). GPU tests skip, with the reason, without a GPU.
# Environment: BUILD_DIR (default build), JOBS (default: all cores), LATENTLAB_CUDA (AUTO|ON|OFF),
# LATENTLAB_EMULATION=0, SANITIZE=0, FUZZ=0 (leave a stage out), FUZZ_RUNS (default 100000).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
start=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLATENTLAB_CUDA="${LATENTLAB_CUDA:-AUTO}"
cmake --build "$build" -j "$jobs"
status=0
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 600 || status=$?
# ctest lists skipped tests without saying why; gtest wrote the reason after "Skipped".
log="$build/Testing/Temporary/LastTest.log"
if [ -f "$log" ] && grep -q '^\[  SKIPPED \]' "$log"; then
  echo "Skipped tests and why:"
  awk '/: Skipped$/ {getline why; getline name; sub(/^\[  SKIPPED \] /, "", name); print "  " name ": " why}' "$log"
fi
[ "$status" -eq 0 ] || exit "$status"

# Installed and used as a library: cmake --install into a scratch prefix, examples/xor built against
# it with find_package(latentlab) and run, the README's C++ example compared with it.
bash scripts/install-check.sh "$build"
# The runs loaded in PyTorch, where Debian's PyTorch is installed (scripts/pytorch-check.sh; it says
# so and goes on where it is not).
bash scripts/pytorch-check.sh "$build"
# Every command README.md and docs/ show, run with less data (scripts/docs-check.sh).
bash scripts/docs-check.sh "$build"
# The explorer of `latentlab serve` in a headless Chromium (scripts/browser-test.sh, about 30 s):
# installs chromium, node and puppeteer-core where missing (as root; otherwise it prints SKIP and the
# reason), trains a tiny VAE and a conditional GAN and works every control of the page; screenshots
# in $build/browser-test.
bash scripts/browser-test.sh "$build/apps/latentlab" "$build/browser-test"
# Where nvcc made the main build a CUDA build, also check that a CPU-only build (what users without
# the CUDA toolkit get) still configures, links and runs.
if [ -x /usr/local/cuda/bin/nvcc ] || command -v nvcc > /dev/null; then
  echo "latentlab: checking the CPU-only configuration (-DLATENTLAB_CUDA=OFF)"
  cmake -S . -B "$build-cpu-only" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLATENTLAB_CUDA=OFF -DLATENTLAB_BUILD_BENCH=OFF > /dev/null
  cmake --build "$build-cpu-only" -j "$jobs" --target latentlab test_device test_cli
  "$build-cpu-only/tests/test_device" --gtest_brief=1
  "$build-cpu-only/tests/test_cli" --gtest_brief=1
fi
# The GPU tests once more, on the CPU emulation of CUDA (tests/emu): the same kernels/cuda sources
# and tests/cuda suite compiled with g++, so that every run checks the CUDA code's indexing,
# barriers, launch shapes and the engine's CUDA paths, where no GPU is. (Not a GPU: see
# tests/emu/README.md for what it cannot check.) LATENTLAB_EMULATION=0 leaves it out; the emulator's
# context switch is x86-64 assembly, so other processors skip it, saying so.
if [ "${LATENTLAB_EMULATION:-1}" != 0 ] && [ "$(uname -m)" != x86_64 ]; then
  echo "latentlab: the CUDA emulator is x86-64 only; its stage is skipped on $(uname -m)"
elif [ "${LATENTLAB_EMULATION:-1}" != 0 ]; then
  echo "latentlab: the CUDA tests on the CPU emulation of CUDA (-DLATENTLAB_CUDA_EMULATION=ON)"
  cmake -S . -B "$build-emu" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLATENTLAB_CUDA_EMULATION=ON \
    -DLATENTLAB_BUILD_BENCH=OFF > /dev/null
  mapfile -t emu_tests < <(bash scripts/emu-tests.sh)
  cmake --build "$build-emu" -j "$jobs" --target "${emu_tests[@]}"
  for t in "${emu_tests[@]}"; do
    echo "  $t"
    "$build-emu/tests/$t" --gtest_brief=1
  done
fi
# The CPU suite once more under AddressSanitizer and UndefinedBehaviorSanitizer (scripts/sanitize.sh),
# then every file reader under libFuzzer, FUZZ_RUNS (100,000) executions each (scripts/fuzz.sh).
# SANITIZE=0 / FUZZ=0 leave them out.
if [ "${SANITIZE:-1}" != 0 ]; then
  echo "latentlab: the CPU suite under ASan+UBSan (scripts/sanitize.sh)"
  JOBS=$jobs bash scripts/sanitize.sh
fi
if [ "${FUZZ:-1}" != 0 ]; then
  fuzz_runs=${FUZZ_RUNS:-100000}
  echo "latentlab: the file readers under libFuzzer (scripts/fuzz.sh, $fuzz_runs executions per target)"
  JOBS=$jobs FUZZ_RUNS=$fuzz_runs bash scripts/fuzz.sh
fi
echo "latentlab: tests passed in $(( $(date +%s) - start )) s (build and run, $jobs jobs)"
