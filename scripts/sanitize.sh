#!/usr/bin/env bash
# sanitize.sh: the CPU test suite built with AddressSanitizer and UndefinedBehaviorSanitizer.
#   bash scripts/sanitize.sh            (scripts/test.sh runs it; SANITIZE=0 there leaves it out)
# A separate build (build-asan, -DLATENTLAB_CUDA=OFF, no benches) with
#   -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
# so that an out-of-bounds access, a use after free, a leak or undefined behaviour (signed overflow,
# a bad shift, a misaligned load, a float-to-int conversion out of range) fails the test that
# caused it. What runs: the whole CPU suite (kernels, io, engine, data, models, apps) except four
# tests that train for hundreds of steps (SANITIZE_EXCLUDE: 330 of the suite's 440 s unsanitized;
# they run in the main stage, and the same code runs here in the shorter training tests); then the
# CUDA tests on the CPU emulation of CUDA, built the same way (build-asan-emu). Environment:
# BUILD_DIR (default build-asan), EMU_BUILD_DIR (default BUILD_DIR-emu), JOBS (default: all cores),
# SANITIZE_EXCLUDE (a ctest -E regex), SANITIZE_EMULATION=0 (leave the emulated tests out).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

build=${BUILD_DIR:-build-asan}
jobs=${JOBS:-$(nproc)}
exclude=${SANITIZE_EXCLUDE:-'GanTrace\.Follows|FidCli\.ClassifierTrains|GanCli\.TrainsWrites|GanCli\.Gan128Trains'}
flags="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
start=$(date +%s)
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLATENTLAB_CUDA=OFF -DLATENTLAB_BUILD_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > /dev/null
cmake --build "$build" -j "$jobs"
built=$(date +%s)
# halt_on_error: the first report ends the test with a failure. OpenBLAS and libgomp are not
# instrumented; their threads' own allocations are not ours to report (detect_leaks stays on for
# everything else).
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 900 -E "$exclude"
tested=$(date +%s)
echo "sanitize: ASan+UBSan CPU suite passed (build $((built - start)) s, tests $((tested - built)) s)"

# The CUDA tests on the emulator (tests/emu) under the same sanitizers: the CUDA sources' host code,
# the kernels' indexing into device buffers (plain host memory there, so an out-of-bounds index in a
# kernel is an ASan report) and the emulator itself, whose fibers tell ASan of each stack switch.
# x86-64 only, like the emulator; SANITIZE_EMULATION=0 leaves it out.
if [ "${SANITIZE_EMULATION:-1}" = 0 ]; then
  exit 0
elif [ "$(uname -m)" != x86_64 ]; then
  echo "sanitize: the CUDA emulator is x86-64 only; its sanitized stage is skipped on $(uname -m)"
  exit 0
fi
emu_build=${EMU_BUILD_DIR:-$build-emu}
cmake -S . -B "$emu_build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLATENTLAB_CUDA_EMULATION=ON -DLATENTLAB_BUILD_BENCH=OFF \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_C_FLAGS="$flags" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" > /dev/null
mapfile -t emu_tests < <(bash scripts/emu-tests.sh)
cmake --build "$emu_build" -j "$jobs" --target "${emu_tests[@]}"
emu_built=$(date +%s)
for t in "${emu_tests[@]}"; do
  echo "  $t (emulated, ASan+UBSan)"
  "$emu_build/tests/$t" --gtest_brief=1
done
echo "sanitize: ASan+UBSan emulated CUDA tests passed (build $((emu_built - tested)) s, tests $(($(date +%s) - emu_built)) s)"
