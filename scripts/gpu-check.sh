#!/usr/bin/env bash
# gpu-check.sh: the GPU suite of latentlab in one command, on a machine with an NVIDIA GPU and the CUDA
# toolkit but none of our Debian packages (docs/cuda.md).
#
#   bash scripts/gpu-check.sh prepare     on a development machine (Debian 12 with scripts/deps.sh
#                                         done): copies the headers, libraries and data the build
#                                         needs into .gpu-deps/ (about 45 MB; git-ignored), to be
#                                         carried to the GPU machine with the working tree
#   bash scripts/gpu-check.sh [PHASE...]  on the GPU machine; phases, in order (default: all):
#       preflight  before anything is built, one clear line and a failure where the run cannot
#                  succeed: no GPU, a driver older than the toolkit's major version, no cuDNN, too
#                  little free GPU memory, a GPU architecture the build would not cover
#       build      configure and build build-gpu/ (Release, CUDA on, sm_90 unless
#                  CMAKE_CUDA_ARCHITECTURES is set in the environment; nvcc warnings are counted,
#                  not errors: -DLATENTLAB_CUDA_WERROR=OFF)
#       test       the whole ctest suite; fails if any test labelled "cuda" (tests/cuda) skipped:
#                  the GPU must run them all. Skips under other labels (the engine's no-GPU message
#                  test skips exactly where a GPU is; MNIST cases without fetch-mnist.sh) are listed
#       sanitize   compute-sanitizer in a few minutes: memcheck over every tests/cuda executable
#                  without its large-shape cases, racecheck over the cases of the kernels that use
#                  shared memory (BatchNorm, bias, transpose, losses, sums, KL)
#       bench      every bench_cuda_* executable (Google Benchmark, CUDA events) as JSON
#       compare    end to end beside PyTorch on the same GPU: DCGAN-64 training steps at batch 128,
#                  latentlab (native convolutions, then cuDNN) and bench/pytorch/dcgan64_gpu.py
#       report     bench/results/gpu-check-<date>-<gpu>.md from what the phases wrote
#   Each phase writes its log and status under build-gpu/gpu-check/, so phases can run in separate
#   calls (a GPU lease may limit one command to ten minutes) and `report` sums up all of them.
#   Budget on one H100 with 16 cores, estimated (never yet run): preflight seconds, build ~4 min,
#   test ~1 min, sanitize <= 3 min (each sanitizer run is cut at SANITIZE_TIMEOUT seconds, default
#   90, and then counts as a failure), bench ~1 min, compare ~1 min: within 10 minutes. Where one
#   command may take at most 10 minutes: `gpu-check.sh preflight build test`, then
#   `gpu-check.sh sanitize bench compare report`.
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

# ---- preflight: fail in seconds, with one line, where the run cannot succeed --------------------
# "12.4" -> 12040, the runtime's encoding of versions (major * 1000 + minor * 10)
cuda_version_number() { echo "$1" | awk -F. '{ printf "%d", $1 * 1000 + $2 * 10 }'; }

phase_preflight() {
  local smi driver_cuda toolkit free cap archs cudnn_h cudnn_lib d t
  if ! command -v nvidia-smi > /dev/null; then
    status preflight fail "no GPU: nvidia-smi is not installed (no NVIDIA driver on this machine)"; return 1
  fi
  if ! smi=$(nvidia-smi 2>&1); then
    status preflight fail "no GPU: nvidia-smi fails: $(echo "$smi" | head -1)"; return 1
  fi
  if ! command -v nvcc > /dev/null; then
    status preflight fail "no CUDA toolkit: nvcc is not on PATH (expected /usr/local/cuda/bin/nvcc)"; return 1
  fi
  # The newest CUDA the driver supports, from nvidia-smi's banner ("CUDA Version: 12.4").
  driver_cuda=$(echo "$smi" | grep -o "CUDA Version: *[0-9.]*" | grep -o "[0-9][0-9.]*" | head -1)
  toolkit=$(nvcc --version | grep -o "release [0-9.]*" | grep -o "[0-9][0-9.]*" | head -1)
  if [ -n "$driver_cuda" ] && [ -n "$toolkit" ]; then
    d=$(cuda_version_number "$driver_cuda")
    t=$(cuda_version_number "$toolkit")
    if [ $((d / 1000)) -lt $((t / 1000)) ]; then
      status preflight fail "the driver supports CUDA $driver_cuda, the toolkit is CUDA $toolkit: every GPU test would skip ('driver version is insufficient'); update the driver or use a CUDA ${driver_cuda%%.*}.x toolkit"
      return 1
    fi
    # Within a major version an older driver runs SASS from a newer toolkit (minor version
    # compatibility, NVIDIA's CUDA Compatibility guide); it could not JIT newer PTX, and we ship SASS.
    if [ "$d" -lt "$t" ]; then say "preflight: driver CUDA $driver_cuda < toolkit $toolkit: minor-version compatibility (SASS only)"; fi
  fi
  cudnn_h=$(ls /usr/local/cuda/include/cudnn.h /usr/include/cudnn.h /usr/include/x86_64-linux-gnu/cudnn.h 2>/dev/null | head -1)
  cudnn_lib=$(ls /usr/local/cuda/lib64/libcudnn.so* /usr/lib/x86_64-linux-gnu/libcudnn.so* 2>/dev/null | head -1)
  if [ -z "$cudnn_h" ] || [ -z "$cudnn_lib" ]; then
    if [ "${GPU_CHECK_ALLOW_NO_CUDNN:-0}" != 1 ]; then
      status preflight fail "no cuDNN (cudnn.h ${cudnn_h:-missing}, libcudnn ${cudnn_lib:-missing}): its cases would skip and fail the test phase; install cuDNN under /usr/local/cuda, or set GPU_CHECK_ALLOW_NO_CUDNN=1 to accept those skips"
      return 1
    fi
    say "preflight: no cuDNN; GPU_CHECK_ALLOW_NO_CUDNN=1, so the cuDNN cases' skips are accepted"
  fi
  free=$(nvidia-smi --query-gpu=memory.free --format=csv,noheader,nounits 2>/dev/null | head -1 | tr -dc 0-9)
  if [ -n "$free" ] && [ "$free" -lt "${GPU_CHECK_MIN_FREE_MIB:-4096}" ]; then
    status preflight fail "only $free MiB of GPU memory free (at least ${GPU_CHECK_MIN_FREE_MIB:-4096} needed): another process holds the GPU (see nvidia-smi)"
    return 1
  fi
  # The GPU's architecture must be among the build's (SASS only: nothing to JIT).
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -dc 0-9)
  archs=$(echo "$arch" | tr ';,' '  ' | sed 's/-real//g; s/-virtual//g')
  if [ -n "$cap" ] && ! echo " $archs " | grep -q " $cap "; then
    status preflight fail "the GPU is sm_$cap and the build would target '$arch': set CMAKE_CUDA_ARCHITECTURES=$cap"
    return 1
  fi
  status preflight pass "$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), sm_${cap:-?}, driver CUDA ${driver_cuda:-?}, toolkit ${toolkit:-?}, ${free:-?} MiB free, cuDNN ${cudnn_lib:-accepted missing}"
}

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
  if cmake -S "$root" -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DLATENTLAB_CUDA=ON -DLATENTLAB_CUDA_WERROR=OFF \
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
  local rc=$? summary counts skipped_cuda skipped_other n_cuda
  summary=$(grep -E "tests passed|tests failed" "$log/ctest.log" | tail -1)
  # Every test labelled "cuda" must run on a GPU machine: a skip there is a failure of the suite.
  (cd "$build" && ctest -N -L '^cuda$' > "$log/cuda-tests.txt" 2>&1)
  if ! counts=$(python3 "$root/scripts/ctest_skips.py" "$log/ctest.xml" "$log/cuda-tests.txt" "$log/skipped.txt"); then
    status test fail "$summary; cannot read ctest's JUnit file $log/ctest.xml"
    return 1
  fi
  read -r skipped_cuda skipped_other n_cuda <<< "$counts"
  if [ "$n_cuda" = 0 ]; then
    status test fail "$summary; no test carries the label cuda: the CUDA backend was not built"
    return 1
  fi
  if [ $rc -eq 0 ] && [ "$skipped_cuda" = 0 ]; then
    status test pass "$summary; all $n_cuda cuda-labelled tests ran; $skipped_other skips under other labels (skipped.txt)"
  else
    status test fail "$summary; $skipped_cuda of $n_cuda cuda-labelled tests skipped (build-gpu/gpu-check/skipped.txt)"
    return 1
  fi
}

# memcheck: every tests/cuda executable without its large shapes (the same indexing as the small
# ones with more blocks; under memcheck they take minutes). racecheck: the cases of the kernels with
# __shared__ memory (kernels/cuda: batchnorm, bias, elementwise's transpose, loss, reduce and
# block_sum.cuh, vae's KL).
SANITIZE_MEMCHECK_FILTER='-*Large*:*RepeatedCallsAreBitIdentical*:*Tf32StaysClose*'
SANITIZE_RACECHECK_FILTER='*BnCuda*:*BiasCuda*:*Transpose*:*LossCuda*:*SoftmaxCe*:*SumAll*:*SumDim*:*BroadcastDim*:*KlFused*:*Reparam*-*Large*'

phase_sanitize() {
  command -v compute-sanitizer > /dev/null || { status sanitize fail "compute-sanitizer not found"; return 1; }
  local failed=0 ran=0 exe tool name filter rc limit=${SANITIZE_TIMEOUT:-90} t0=$SECONDS
  : > "$log/sanitize.log"
  for exe in "$build"/tests/test_*; do
    name=$(basename "$exe")
    # The CUDA parity tests: the executables built from tests/cuda/.
    [ -f "$root/tests/cuda/$name.cpp" ] || continue
    for tool in memcheck racecheck; do
      if [ $tool = memcheck ]; then filter=$SANITIZE_MEMCHECK_FILTER; else filter=$SANITIZE_RACECHECK_FILTER; fi
      ran=$((ran + 1))
      timeout "$limit" compute-sanitizer --tool "$tool" --error-exitcode 99 "$exe" --gtest_filter="$filter" \
        > "$log/sanitize-$tool-$name.log" 2>&1
      rc=$?
      if [ $rc -eq 0 ]; then echo "$tool $name pass" >> "$log/sanitize.log"
      elif [ $rc -eq 124 ]; then echo "$tool $name TIMEOUT after ${limit} s" >> "$log/sanitize.log"; failed=$((failed + 1))
      else echo "$tool $name FAIL (exit $rc)" >> "$log/sanitize.log"; failed=$((failed + 1))
      fi
    done
  done
  if [ $failed -eq 0 ] && [ $ran -gt 0 ]; then status sanitize pass "$ran runs clean in $((SECONDS - t0)) s"
  else status sanitize fail "$failed of $ran runs failed ($((SECONDS - t0)) s; build-gpu/gpu-check/sanitize.log)"; return 1; fi
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
  # The MLP VAE step queued kernel by kernel against the same step as one CUDA graph (--cuda-graph).
  if "$exe" --benchmark_filter=VaeMlpTrainStepCuda --benchmark_min_time=2 --benchmark_format=json \
       > "$log/compare-vae-graph.json" 2> "$log/compare-vae-graph.log"; then
    python3 -c "import json,sys; [print('vae-mlp', b['name'], b.get('img_per_s', 'error: ' + b.get('error_message', ''))) for b in json.load(open(sys.argv[1]))['benchmarks']]" \
      "$log/compare-vae-graph.json" >> "$log/compare.txt"
  else
    echo "vae-mlp graph comparison failed" >> "$log/compare.txt"; rc=1
  fi
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
for phase in ["preflight", "build", "test", "sanitize", "bench", "compare"]:
    p = os.path.join(log, phase + ".status")
    if os.path.exists(p):
        parts = open(p).read().strip().split(" ", 2)
        lines.append(f"| {phase} | {parts[1]} | {parts[2] if len(parts) > 2 else ''} |")
    else:
        lines.append(f"| {phase} | not run | |")
cmp = os.path.join(log, "compare.txt")
if os.path.exists(cmp):
    lines += ["", "## Training, batch 128, images per second (DCGAN-64: median; MLP VAE: with and without a CUDA graph)", "", "```", open(cmp).read().strip(), "```"]
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
  if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then sed -n '2,/^set -uo/p' "$0" | sed '$d'; return; fi
  setup_env
  local phases=("$@") rc=0
  [ ${#phases[@]} -eq 0 ] && phases=(preflight build test sanitize bench compare report)
  for p in "${phases[@]}"; do
    case $p in
      preflight|build|test|sanitize|bench|compare|report) ;;
      *) die "unknown phase '$p': use preflight, build, test, sanitize, bench, compare, report, or prepare" ;;
    esac
  done
  for p in "${phases[@]}"; do
    "phase_$p" || rc=1
    # Nothing after a failed preflight or build can run; the report, if asked for, says why.
    if [ $rc -ne 0 ] && { [ "$p" = preflight ] || [ "$p" = build ]; }; then
      case " ${phases[*]} " in *" report "*) phase_report ;; esac
      break
    fi
  done
  copy_out
  return $rc
}

main "$@"
