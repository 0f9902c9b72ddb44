#!/usr/bin/env bash
# gan_vs_pytorch.sh: DCGAN-28 training throughput of latentlab and of PyTorch on this machine, in one
# run, side by side.
#   bash bench/gan_vs_pytorch.sh [THREADS]        (default 2; BUILD_DIR=build-x to pick the build)
# Both run whole GAN steps (D on real and on G(z).detach(), D's Adam step, G through the updated D,
# G's Adam step; BCE-with-logits, Adam 2e-4 betas 0.5/0.999) of the same model (models/gan.h's
# dcgan28: ngf = ndf = 64, nz = 100, one channel) at batch 128 on Fashion-MNIST batches in [-1, 1].
# latentlab: build/bench/bench_models BM_Dcgan28TrainStep (Google Benchmark); PyTorch:
# bench/pytorch/dcgan28.py bench (Debian's python3-torch; the script sets OMP_WAIT_POLICY=PASSIVE and
# sizes OpenBLAS's pool, as vae_mlp.py does). PyTorch is measured in both of its configurations for
# THREADS cores (THREADS torch threads, or 1 torch thread with THREADS OpenBLAS threads) and the
# faster one counts. The two frameworks are run alternately, three rounds, and the medians are
# compared. A GAN step at batch 128 takes a few hundred milliseconds, so each measurement is a few
# seconds long (--benchmark_min_time=5 here, 10 steps x 3 repeats there). Needs a built tree
# (scripts/test.sh) and apt-get install python3-torch. bench/conv_vs_pytorch.sh runs the same pair with
# the peak RSS of each, beside DCGAN-64 and the conv VAE.
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

echo "load before: $(uptime)"
ours=()
theirs=()
for round in 1 2 3; do
  r=$(OMP_NUM_THREADS=$threads "$bench" --benchmark_filter=Dcgan28TrainStep --benchmark_min_time=5 --benchmark_format=json 2>/dev/null |
      /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['benchmarks'][0]['img_per_s'])")
  ours+=("$r")
  t=0
  for cfg in "--threads $threads" "--threads 1 --blas-threads $threads"; do
    v=$(/usr/bin/python3 bench/pytorch/dcgan28.py bench $cfg --steps 10 --warmup 2 --repeats 3 --json - 2>/dev/null |
        /usr/bin/python3 -c "import json,sys; text=sys.stdin.read(); print(json.loads(text[text.index('{'):])['images_per_second'])")
    t=$(/usr/bin/python3 -c "print(max($t, $v))")
  done
  theirs+=("$t")
  printf 'round %d: latentlab %8.1f img/s   pytorch %8.1f img/s\n' "$round" "$r" "$t"
done
echo "load after: $(uptime)"
/usr/bin/python3 - "$threads" "${ours[@]}" "${theirs[@]}" <<'PY'
import statistics, sys, platform
threads = sys.argv[1]
vals = [float(v) for v in sys.argv[2:]]
ours, theirs = vals[:3], vals[3:]
mo, mt = statistics.median(ours), statistics.median(theirs)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(f"DCGAN-28 GAN training step (ngf = ndf = 64), batch 128, {threads} threads, {cpu}")
print(f"  latentlab {mo:8.1f} img/s (median of {', '.join(f'{v:.1f}' for v in ours)})")
print(f"  pytorch   {mt:8.1f} img/s (median of {', '.join(f'{v:.1f}' for v in theirs)}; its faster thread configuration each round)")
print(f"  ratio latentlab / pytorch = {mo / mt:.2f}")
PY
