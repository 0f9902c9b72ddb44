#!/usr/bin/env bash
# gpu-check.sh: the GPU suite of latentlab in one command, on a machine with an NVIDIA GPU and the CUDA
# toolkit but none of our Debian packages (shared/GPU.md, docs/cuda.md).
#
#   bash scripts/gpu-check.sh prepare     on a development machine (Debian 12 with scripts/deps.sh
#                                         done): copies the headers, libraries and data the build
#                                         needs into .gpu-deps/ (about 45 MB; git-ignored), to be
#                                         carried to the GPU machine with the working tree
#   bash scripts/gpu-check.sh [PHASE...]  on the GPU machine; phases, in order (default: all):
#       build      configure and build build-gpu/ (Release, CUDA on, sm_90 unless
#                  CMAKE_CUDA_ARCHITECTURES is set in the environment)
#       test       the whole ctest suite; fails if any CUDA test skipped (the GPU must run them all)
#       sanitize   compute-sanitizer memcheck and racecheck over every tests/cuda executable
#       bench      every bench_cuda_* executable (Google Benchmark, CUDA events) as JSON
#       compare    end to end beside PyTorch on the same GPU: DCGAN-64 training steps at batch 128,
#                  latentlab (native convolutions, then cuDNN) and bench/pytorch/dcgan64_gpu.py
#       report     bench/results/gpu-check-<date>-<gpu>.md from what the phases wrote
#   Each phase writes its log and status under build-gpu/gpu-check/, so phases can run in separate
#   calls (a GPU lease may limit one command to ten minutes) and `report` sums up all of them.
#   Where $OUT is set (the device tool's output folder), the logs and the report are copied there.
#
# Nothing here needs the network. Where .gpu-deps/ is absent the system's own packages are used.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
deps=$root/.gpu-deps
build=${BUILD_DIR:-$root/build-gpu}
log=$build/gpu-check
arch=${CMAKE_CUDA_ARCHITECTURES:-90}

say() { echo "gpu-check: $*" >&2; }
die() { say "$*"; exit 1; }

# ---- prepare (development machine) --------------------------------------------------------------
prepare() {
  local multi=x86_64-linux-gnu usr=$deps/usr
  [ -f /usr/include/gtest/gtest.h ] || die "prepare needs our Debian packages: run sudo bash scripts/deps.sh first"
  rm -rf "$deps"
  mkdir -p "$usr/include" "$usr/lib/$multi/cmake" "$usr/share/cmake" "$deps/fashion-mnist"
  # Header-only libraries and the headers of the compiled ones.
  cp -r /usr/include/gtest /usr/include/gmock /usr/include/benchmark /usr/include/nlohmann \
        /usr/include/CLI /usr/include/stb "$usr/include/"
  cp /usr/include/$multi/openblas-pthread/{cblas.h,openblas_config.h} "$usr/include/"
  cp /usr/include/zlib.h /usr/include/zconf.h "$usr/include/" 2>/dev/null || true
  # Static GoogleTest and Google Benchmark with their CMake packages (relocatable: they find their
  # files relative to themselves).
  cp -a /usr/lib/$multi/libgtest*.a /usr/lib/$multi/libgmock*.a /usr/lib/$multi/libbenchmark* "$usr/lib/$multi/"
  cp -r /usr/lib/$multi/cmake/GTest /usr/lib/$multi/cmake/benchmark "$usr/lib/$multi/cmake/"
  cp -r /usr/share/cmake/nlohmann_json "$usr/share/cmake/"
  # OpenBLAS (the CPU references' GEMM) and the runtime libraries it needs, compressed for the carry.
  local blas
  blas=$(readlink -f /usr/lib/$multi/libopenblas.so.0)
  xz -T0 -6 -c "$blas" > "$usr/lib/$multi/libopenblas.so.0.xz"
  cp -L /usr/lib/$multi/libgfortran.so.5 /usr/lib/$multi/libquadmath.so.0 "$usr/lib/$multi/"
  cp -L /usr/lib/$multi/libz.so "$usr/lib/$multi/libz.so" 2>/dev/null || true
  # Fashion-MNIST (Debian's dataset-fashion-mnist), for the tests and benches that read it.
  cp /usr/share/datasets/fashion-mnist/*.gz "$deps/fashion-mnist/"
  git rev-parse HEAD > "$deps/COMMIT" 2>/dev/null || true
  git status --porcelain > "$deps/DIRTY" 2>/dev/null || true
  du -sh "$deps" >&2
  say "prepared $deps; carry it with the working tree (device tool: carry [\".gpu-deps\"])"
}

# ---- the GPU machine ----------------------------------------------------------------------------
setup_env() {
  local multi=x86_64-linux-gnu usr=$deps/usr
  if [ -d "$deps" ]; then
    if [ -f "$usr/lib/$multi/libopenblas.so.0.xz" ] && [ ! -f "$usr/lib/$multi/libopenblas.so.0" ]; then
      xz -d -k "$usr/lib/$multi/libopenblas.so.0.xz" || die "cannot unpack OpenBLAS"
    fi
    ln -sf libopenblas.so.0 "$usr/lib/$multi/libopenblas.so"
    export LD_LIBRARY_PATH=$usr/lib/$multi:${LD_LIBRARY_PATH:-}
    export CMAKE_PREFIX_PATH=$usr:${CMAKE_PREFIX_PATH:-}
    export LATENTLAB_FASHION_MNIST_DIR=$deps/fashion-mnist
  fi
  if [ -d /usr/local/cuda/bin ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
  mkdir -p "$log"
}

# Writes the status of a phase: "<phase> <pass|fail> <details>".
status() { echo "$1 $2 ${3:-}" > "$log/$1.status"; say "$1: $2 ${3:-}"; }

phase_build() {
  local extra=()
  if [ -d "$deps" ]; then
    local lib=$deps/usr/lib/x86_64-linux-gnu
    extra+=("-DBLAS_openblas_LIBRARY=$lib/libopenblas.so" "-DCBLAS_INCLUDE_DIR=$deps/usr/include"
            "-DCLI11_INCLUDE_DIR=$deps/usr/include" "-DSTB_INCLUDE_DIR=$deps/usr/include/stb")
    [ -f "$deps/usr/include/zlib.h" ] && extra+=("-DZLIB_INCLUDE_DIR=$deps/usr/include")
  fi
  local gen=()
  command -v ninja > /dev/null && gen=(-G Ninja)
  if cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DLATENTLAB_CUDA=ON \
       -DCMAKE_CUDA_ARCHITECTURES="$arch" "${extra[@]}" > "$log/configure.log" 2>&1 &&
     cmake --build "$build" -j"$(nproc)" > "$log/build.log" 2>&1; then
    local warnings
    warnings=$(grep -ci "warning" "$log/build.log" || true)
    status build pass "architectures $arch, $warnings warning lines"
  else
    tail -30 "$log/configure.log" "$log/build.log" >&2
    status build fail "see build-gpu/gpu-check/build.log"
    return 1
  fi
}

phase_test() {
  (cd "$build" && ctest -j"$(nproc)" --output-on-failure --output-junit "$log/ctest.xml" > "$log/ctest.log" 2>&1)
  local rc=$?
  local summary skipped_cuda
  summary=$(grep -E "tests passed|tests failed" "$log/ctest.log" | tail -1)
  # Every CUDA test must run on a GPU machine: a skip there is a failure of the suite.
  skipped_cuda=$(grep -E "\(Skipped\)|Not Run" "$log/ctest.log" | grep -ciE "cuda|gpu" || true)
  if [ $rc -eq 0 ] && [ "$skipped_cuda" = 0 ]; then
    status test pass "$summary"
  else
    status test fail "$summary; $skipped_cuda CUDA tests skipped"
    return 1
  fi
}

phase_sanitize() {
  command -v compute-sanitizer > /dev/null || { status sanitize fail "compute-sanitizer not found"; return 1; }
  local failed=0 ran=0 exe tool name
  : > "$log/sanitize.log"
  for exe in "$build"/tests/test_*; do
    name=$(basename "$exe")
    # The CUDA parity tests: the executables built from tests/cuda/.
    [ -f "$root/tests/cuda/$name.cpp" ] || continue
    for tool in memcheck racecheck; do
      ran=$((ran + 1))
      if compute-sanitizer --tool "$tool" --error-exitcode 99 "$exe" > "$log/sanitize-$tool-$name.log" 2>&1; then
        echo "$tool $name pass" >> "$log/sanitize.log"
      else
        echo "$tool $name FAIL" >> "$log/sanitize.log"
        failed=$((failed + 1))
      fi
    done
  done
  if [ $failed -eq 0 ] && [ $ran -gt 0 ]; then status sanitize pass "$ran runs clean"
  else status sanitize fail "$failed of $ran runs failed"; return 1; fi
}

phase_bench() {
  local failed=0 ran=0 exe name
  for exe in "$build"/bench/bench_cuda_*; do
    [ -x "$exe" ] || continue
    name=$(basename "$exe")
    ran=$((ran + 1))
    "$exe" --benchmark_min_time=0.2 --benchmark_format=json --benchmark_out="$log/$name.json" \
      --benchmark_out_format=json > "$log/$name.log" 2>&1 || failed=$((failed + 1))
  done
  if [ $failed -eq 0 ] && [ $ran -gt 0 ]; then status bench pass "$ran executables"
  else status bench fail "$failed of $ran executables failed"; return 1; fi
}

phase_compare() {
  local exe=$build/bench/bench_models rc=0
  [ -x "$exe" ] || { status compare fail "no $exe"; return 1; }
  : > "$log/compare.txt"
  for backend in native cudnn; do
    if LATENTLAB_CONV_BACKEND=$backend "$exe" --benchmark_filter=Dcgan64TrainStep --benchmark_min_time=5 \
         --benchmark_format=json > "$log/compare-latentlab-$backend.json" 2> "$log/compare-latentlab-$backend.log"; then
      python3 -c "import json,sys; b=json.load(open(sys.argv[1]))['benchmarks'][0]; print('latentlab-$backend', b.get('img_per_s', 'error: ' + b.get('error_message', '')))" \
        "$log/compare-latentlab-$backend.json" >> "$log/compare.txt"
    else
      echo "latentlab-$backend failed" >> "$log/compare.txt"; rc=1
    fi
  done
  if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2> /dev/null; then
    if python3 "$root/bench/pytorch/dcgan64_gpu.py" --json "$log/compare-pytorch.json" > "$log/compare-pytorch.log" 2>&1; then
      python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('pytorch', r['median_img_per_s'], r['torch'], 'cudnn', r['cudnn'])" \
        "$log/compare-pytorch.json" >> "$log/compare.txt"
    else
      echo "pytorch failed" >> "$log/compare.txt"; rc=1
    fi
  else
    echo "pytorch unavailable (no torch with CUDA)" >> "$log/compare.txt"
  fi
  if [ $rc -eq 0 ]; then status compare pass "$(tr '\n' ';' < "$log/compare.txt")"
  else status compare fail "$(tr '\n' ';' < "$log/compare.txt")"; return 1; fi
}

phase_report() {
  local gpu driver date commit file
  gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)
  driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1)
  date=$(date -u +%Y-%m-%d)
  commit=$(git rev-parse --short HEAD 2>/dev/null || cut -c1-7 "$deps/COMMIT" 2>/dev/null || echo unknown)
  local slug
  slug=$(echo "${gpu:-no-gpu}" | tr 'A-Z ' 'a-z-' | tr -cd 'a-z0-9-')
  file=$root/bench/results/gpu-check-$date-$slug.md
  python3 - "$log" "$file" "$date" "${gpu:-none}" "${driver:-none}" "$commit" "$arch" <<'PY'
import glob, json, os, sys
log, out, date, gpu, driver, commit, arch = sys.argv[1:]
lines = [f"# GPU check {date}: {gpu}", "",
         f"Written by `bash scripts/gpu-check.sh` on {gpu} (driver {driver}), latentlab commit {commit},",
         f"CUDA architectures {arch}.", "", "| phase | result | details |", "|---|---|---|"]
for phase in ["build", "test", "sanitize", "bench", "compare"]:
    p = os.path.join(log, phase + ".status")
    if os.path.exists(p):
        parts = open(p).read().strip().split(" ", 2)
        lines.append(f"| {phase} | {parts[1]} | {parts[2] if len(parts) > 2 else ''} |")
    else:
        lines.append(f"| {phase} | not run | |")
cmp = os.path.join(log, "compare.txt")
if os.path.exists(cmp):
    lines += ["", "## DCGAN-64 training, batch 128, images per second (median)", "", "```", open(cmp).read().strip(), "```"]
san = os.path.join(log, "sanitize.log")
if os.path.exists(san):
    lines += ["", "## compute-sanitizer", "", "```", open(san).read().strip(), "```"]
for f in sorted(glob.glob(os.path.join(log, "bench_cuda_*.json"))):
    try:
        data = json.load(open(f))
    except Exception as e:
        lines += ["", f"## {os.path.basename(f)[:-5]}", "", f"unreadable: {e}"]
        continue
    lines += ["", f"## {os.path.basename(f)[:-5]}", "", "| benchmark | time (us) | counters |", "|---|---|---|"]
    for b in data.get("benchmarks", []):
        if b.get("error_occurred"):
            lines.append(f"| {b['name']} | error | {b.get('error_message', '')} |")
            continue
        t = b["real_time"] * {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[b.get("time_unit", "ns")]
        skip = {"name", "run_name", "run_type", "repetitions", "repetition_index", "threads", "iterations",
                "real_time", "cpu_time", "time_unit", "family_index", "per_family_instance_index",
                "aggregate_name", "aggregate_unit", "label"}
        counters = ", ".join(f"{k} {v:.4g}" for k, v in b.items() if k not in skip and isinstance(v, (int, float)))
        lines.append(f"| {b['name']} | {t:.2f} | {counters} |")
os.makedirs(os.path.dirname(out), exist_ok=True)
open(out, "w").write("\n".join(lines) + "\n")
print(out)
PY
  say "wrote $file"
}

copy_out() {
  [ -n "${OUT:-}" ] || return 0
  mkdir -p "$OUT/gpu-check"
  cp "$log"/*.status "$log"/*.log "$log"/*.json "$log"/*.xml "$log"/*.txt "$OUT/gpu-check/" 2>/dev/null || true
  cp "$root"/bench/results/gpu-check-*.md "$OUT/" 2>/dev/null || true
}

main() {
  if [ "${1:-}" = prepare ]; then prepare; return; fi
  if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then sed -n 2,22p "$0"; return; fi
  setup_env
  local phases=("$@") rc=0
  [ ${#phases[@]} -eq 0 ] && phases=(build test sanitize bench compare report)
  if ! nvidia-smi > /dev/null 2>&1; then
    say "no GPU here (nvidia-smi fails): the CUDA tests will skip and the record will say so"
  fi
  for p in "${phases[@]}"; do
    case $p in
      build|test|sanitize|bench|compare|report) "phase_$p" || rc=1 ;;
      *) die "unknown phase '$p': use build, test, sanitize, bench, compare, report, or prepare" ;;
    esac
    # Nothing after a failed build can run.
    if [ "$p" = build ] && [ $rc -ne 0 ]; then break; fi
  done
  copy_out
  return $rc
}

main "$@"
