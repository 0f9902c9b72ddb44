#!/usr/bin/env bash
# fuzz.sh: fuzzes every file reader of latentlab with libFuzzer (fuzz/, docs/testing.md).
#   bash scripts/fuzz.sh                        # every target, FUZZ_SECONDS (20) each
#   bash scripts/fuzz.sh idx image              # some targets (names as in fuzz/fuzz_<name>.cpp)
#   FUZZ_SECONDS=600 bash scripts/fuzz.sh       # longer
#   FUZZ_RUNS=1000000 bash scripts/fuzz.sh      # a number of executions per target instead
# Installs what is missing (as root; otherwise prints the apt-get line and stops): the build
# dependencies through scripts/deps.sh, then clang and libFuzzer's runtime, which Debian ships in
# libclang-rt-<version>-dev (clang only recommends it). Builds fuzz/ (a CMake project of its own:
# the readers and the targets compiled with clang -fsanitize=fuzzer,address,undefined, CPU only)
# into build-fuzz, writes the seed corpora (build-fuzz/make_seeds) and runs each target on its
# corpus, which grows in build-fuzz/corpus/<target> from run to run.
#
# Every run is bounded: -rss_limit_mb=FUZZ_RSS_MB (2048) for the process, -malloc_limit_mb=
# FUZZ_MALLOC_MB (1024) for any single allocation (a reader that allocates from an unchecked size
# fails here), -timeout=FUZZ_TIMEOUT (30) seconds for one input. A crash, a sanitizer report, a
# leak, a broken limit or a slow input fails the run: the script names the target, the input
# libFuzzer saved (build-fuzz/artifacts/<target>/) and its log, and exits nonzero after the others.
# Reproduce one with:  build-fuzz/fuzz_<target> build-fuzz/artifacts/<target>/crash-...
#
# The test command (scripts/test.sh) runs FUZZ_RUNS=100000: a fixed amount of work rather than of
# time, so a slow machine fuzzes as much as a fast one. Runs are not repeatable input for input
# (libFuzzer records the operands of comparisons, addresses among them, which differ from process to
# process), so a check can find what an earlier one did not: that is a bug in a reader, to be fixed
# with a regression test in the reader's test file, never a flaky test to rerun.
# Environment: BUILD_DIR (default build-fuzz), JOBS (default: all cores), FUZZ_SECONDS, FUZZ_RUNS,
# FUZZ_RSS_MB, FUZZ_MALLOC_MB, FUZZ_TIMEOUT.
set -euo pipefail
cd "$(dirname "$0")/.."

build=${BUILD_DIR:-build-fuzz}
jobs=${JOBS:-$(nproc)}
seconds=${FUZZ_SECONDS:-20}
runs=${FUZZ_RUNS:-}
rss_mb=${FUZZ_RSS_MB:-2048}
malloc_mb=${FUZZ_MALLOC_MB:-1024}
timeout_s=${FUZZ_TIMEOUT:-30}
start=$(date +%s)

bash scripts/deps.sh

# clang, and a link of a trivial fuzz target as the proof that libFuzzer's runtime is there.
libfuzzer_links() {
  command -v clang++ > /dev/null || return 1
  local dir
  dir=$(mktemp -d)
  echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' > "$dir/t.cpp"
  clang++ -fsanitize=fuzzer,address,undefined "$dir/t.cpp" -o "$dir/t" > /dev/null 2>&1
  local status=$?
  rm -rf "$dir"
  return $status
}
if ! libfuzzer_links; then
  missing=()
  command -v clang++ > /dev/null || missing+=(clang)
  if [ "$(id -u)" -ne 0 ]; then
    echo "latentlab: fuzzing needs clang and libFuzzer's runtime (Debian: clang libclang-rt-<version>-dev)" >&2
    echo "install them with:  sudo apt-get install -y clang libclang-rt-14-dev   (Debian 12)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  if [ ${#missing[@]} -gt 0 ]; then
    echo "latentlab: installing clang"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends clang > /dev/null
  fi
  # The runtime package goes with clang's major version (Debian 12: clang 14, libclang-rt-14-dev).
  major=$(clang++ -dumpversion | cut -d. -f1)
  echo "latentlab: installing libclang-rt-$major-dev (libFuzzer and the sanitizer runtimes)"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "libclang-rt-$major-dev" > /dev/null
  libfuzzer_links || { echo "latentlab: clang++ -fsanitize=fuzzer still does not link" >&2; exit 1; }
fi

all_targets=()
for src in fuzz/fuzz_*.cpp; do all_targets+=("$(basename "$src" .cpp | sed 's/^fuzz_//')"); done
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -f "fuzz/fuzz_$t.cpp" ] || { echo "latentlab: no fuzz target '$t' (there are: ${all_targets[*]})" >&2; exit 2; }
done

cmake -S fuzz -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ > /dev/null
cmake --build "$build" -j "$jobs"
build=$(cd "$build" && pwd)  # absolute: the targets work inside their scratch folder (fuzz/common.h)
built=$(date +%s)
rm -rf "$build/seeds"
"$build/make_seeds" "$build/seeds"

if [ -n "$runs" ]; then
  budget=(-runs="$runs")
  echo "latentlab: fuzzing ${#targets[@]} targets, $runs executions each"
else
  budget=(-max_total_time="$seconds")
  echo "latentlab: fuzzing ${#targets[@]} targets, $seconds s each"
fi
# The targets' scratch files (fuzz/common.h), in memory where /dev/shm is, removed at the end even
# when a target crashed and could not remove its own.
scratch=$(mktemp -d -p /dev/shm latentlab-fuzz.XXXXXX 2> /dev/null || mktemp -d)
trap 'rm -rf "$scratch"' EXIT
passed=0
failed=0
failures=()
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  artifacts="$build/artifacts/$t" log="$build/logs/fuzz_$t.log"
  mkdir -p "$corpus" "$artifacts" "$(dirname "$log")"
  rm -f "$artifacts"/*
  t0=$(date +%s)
  status=0
  # The new corpus first: libFuzzer writes what it finds into the first folder; the seeds are read.
  LATENTLAB_FUZZ_TMPDIR="$scratch" "$build/fuzz_$t" "${budget[@]}" -rss_limit_mb="$rss_mb" -malloc_limit_mb="$malloc_mb" -timeout="$timeout_s" \
    -artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus" "$build/seeds/$t" > "$log" 2>&1 || status=$?
  elapsed=$(( $(date +%s) - t0 ))
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  report=$(grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$log" || true)
  if [ "$status" -eq 0 ] && [ -z "$crash" ] && [ -z "$report" ]; then
    passed=$((passed + 1))
    echo "  fuzz_$t: ${executions:-?} executions in $elapsed s (${speed:-?}/s), peak RSS ${rss:-?} MB, $(find "$corpus" -type f | wc -l) corpus files: no crash"
  else
    failed=$((failed + 1))
    failures+=("$t")
    echo "  fuzz_$t: FAILED (exit status $status) after ${executions:-?} executions in $elapsed s"
    [ -z "$report" ] || echo "    ${report}"
    if grep -q 'libFuzzer: run interrupted' "$log"; then
      echo "    interrupted by a signal (SIGINT or SIGTERM from outside): not a finding, but not a complete run"
    fi
    echo "    crash file: ${crash:-(none written)}"
    echo "    log: $log   reproduce: $build/fuzz_$t ${crash:-<input>}"
  fi
done
echo "latentlab: fuzz build $(( built - start )) s, fuzzing $(( $(date +%s) - built )) s ($jobs jobs)"
[ "$failed" -eq 0 ] || echo "latentlab: failed: ${failures[*]}"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
