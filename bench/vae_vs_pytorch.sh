#!/usr/bin/env bash
# vae_vs_pytorch.sh: MLP-VAE training throughput of latentlab and of PyTorch on this machine, in one
# run, side by side (the issue's speed target: latentlab >= 1.5x PyTorch on CPU).
#   bash bench/vae_vs_pytorch.sh [THREADS]        (default 2)
# Both train the same model (784-400-20, batch 128, Adam 1e-3) on the same Fashion-MNIST batches:
# forward, backward and optimizer step. latentlab: build/bench/bench_models (Google Benchmark);
# PyTorch: bench/pytorch/vae_mlp.py bench (Debian's python3-torch, which runs its matrix products
# through OpenBLAS; the script sets OpenBLAS to the same thread count and OMP_WAIT_POLICY=PASSIVE,
# without which its two thread pools fight for the cores). PyTorch is measured in both of its
# configurations for THREADS cores (THREADS torch threads, or 1 torch thread with THREADS OpenBLAS
# threads) and the faster one counts. The two frameworks are run alternately, three rounds, and
# the medians are compared. Needs: a built tree (scripts/test.sh) and
# apt-get install python3-torch.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
build=${BUILD_DIR:-build}
bench="$build/bench/bench_models"
[ -x "$bench" ] || { echo "no $bench: build first (bash scripts/test.sh)" >&2; exit 1; }
# One OpenBLAS kernel set for both frameworks: the one latentlab restarts itself with where OpenBLAS
# takes this processor for an older one (kernels/gemm.h); PyTorch's matrix products use OpenBLAS too.
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$("$bench" --print-blas-core)}
echo "OpenBLAS kernels: $OPENBLAS_CORETYPE"
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "PyTorch missing: apt-get install python3-torch" >&2; exit 1; }

ours=()
theirs=()
for round in 1 2 3; do
  r=$(OMP_NUM_THREADS=$threads "$bench" --benchmark_filter=VaeMlp --benchmark_min_time=3 --benchmark_format=json 2>/dev/null |
      /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['benchmarks'][0]['img_per_s'])")
  ours+=("$r")
  t=0
  for cfg in "--threads $threads" "--threads 1 --blas-threads $threads"; do
    v=$(/usr/bin/python3 bench/pytorch/vae_mlp.py bench $cfg --steps 100 --repeats 3 --json - 2>/dev/null |
        /usr/bin/python3 -c "import json,sys; text=sys.stdin.read(); print(json.loads(text[text.index('{'):])['images_per_second'])")
    t=$(/usr/bin/python3 -c "print(max($t, $v))")
  done
  theirs+=("$t")
  printf 'round %d: latentlab %8.0f img/s   pytorch %8.0f img/s\n' "$round" "$r" "$t"
done
/usr/bin/python3 - "$threads" "${ours[@]}" "${theirs[@]}" <<'PY'
import statistics, sys, platform
threads = sys.argv[1]
vals = [float(v) for v in sys.argv[2:]]
ours, theirs = vals[:3], vals[3:]
mo, mt = statistics.median(ours), statistics.median(theirs)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"MLP-VAE training, batch 128, {threads} threads, {cpu}")
print(f"  latentlab {mo:8.0f} img/s (median of {', '.join(f'{v:.0f}' for v in ours)})")
print(f"  pytorch   {mt:8.0f} img/s (median of {', '.join(f'{v:.0f}' for v in theirs)}; its faster thread configuration each round)")
print(f"  ratio latentlab / pytorch = {mo / mt:.2f}")
PY
