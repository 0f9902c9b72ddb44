#!/usr/bin/env bash
# emu-tests.sh: prints the test programs that run on the CPU emulation of CUDA (tests/emu), one per
# line: the emulator's own tests, the runtime and sync-free step tests, and every tests/cuda suite.
# scripts/test.sh (the emulated stage) and scripts/sanitize.sh (the same under ASan+UBSan) use it.
set -euo pipefail
cd "$(dirname "$0")/.."
printf '%s\n' test_emulator test_runtime test_sync_free_step
for src in tests/cuda/test_*_cuda.cpp; do basename "$src" .cpp; done
