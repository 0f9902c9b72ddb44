#!/usr/bin/env bash
# test.sh: from a fresh clone to a passing test run.
#   bash scripts/test.sh
# Installs missing Debian packages (as root; otherwise prints the apt-get line), configures with
# CMake (the CUDA backend too when nvcc is found), builds in parallel and runs the whole ctest suite.
# GPU tests skip, with the reason, on machines without a GPU.
# Environment: BUILD_DIR (default build), JOBS (default: all cores), LATENTLAB_CUDA (AUTO|ON|OFF).
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
echo "latentlab: tests passed in $(( $(date +%s) - start )) s (build and run, $jobs jobs)"
