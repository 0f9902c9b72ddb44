#!/usr/bin/env bash
# conv_vs_pytorch.sh: training throughput (img/s) and peak memory (peak RSS) of latentlab's
# convolutional models and of their PyTorch twins on this machine's CPU, in one run, side by side.
#   bash bench/conv_vs_pytorch.sh [THREADS]        (default 2; BUILD_DIR=build-x to pick the build;
#                                                   MODELS="dcgan28 vae-conv" for a subset)
# The models (all of them by default, in this order):
#   dcgan28   DCGAN-28 (models/gan.h's dcgan28: ngf = ndf = 64, nz = 100, 1x28x28), batch 128, on
#             Fashion-MNIST batches in [-1, 1]: bench_models BM_Dcgan28TrainStep beside
#             bench/pytorch/dcgan28.py bench (what bench/gan_vs_pytorch.sh compares, plus the memory)
#   dcgan64   DCGAN-64 (models/gan.h's dcgan64, pytorch/examples' dcgan: ngf = ndf = 64, nz = 100,
#             3x64x64), batch 64, on random images in [-1, 1]: BM_Dcgan64TrainStepCpu beside
#             bench/pytorch/dcgan64.py bench
#   vae-conv  the conv VAE with `latentlab train vae --arch conv`'s settings (models/vae.h's Arch::Conv,
#             conv_channels 32, latent 20, beta 1, BCE, Adam 1e-3), batch 128, on Fashion-MNIST
#             batches in [0, 1]: BM_VaeConvTrainStep beside bench/pytorch/vae_conv.py bench
# A GAN step is both phases of models::gan_train_step (D on real and on G(z).detach(), D's Adam step, G
# through the updated D, G's Adam step; BCE-with-logits, Adam 2e-4 betas 0.5/0.999); a VAE step is
# forward, loss (BCE-with-logits summed + KL summed), backward and Adam step.
# Data held by both frameworks alike: the Fashion-MNIST models read the training set (47 MB of bytes)
# during setup and keep 16 batches as floats (6.4 MB at batch 128), dropping the rest; DCGAN-64 holds
# 8 batches of random floats (25 MiB). Neither holds the whole set as floats.
#
# Every measurement runs in a fresh process of its own (one benchmark per bench_models process, one
# model per python process) started by bench/tools/peak_rss.py, which records the process's peak RSS
# (getrusage's ru_maxrss for it: no GNU time needed). The peak is the whole process's: the framework's
# code and libraries (for PyTorch, some 240 MB once torch is imported), the data above, the model,
# its optimizer state and the step's working memory.
# PyTorch is Debian's python3-torch (its own ops on OpenMP, its matrix products in OpenBLAS; the twins
# set OMP_WAIT_POLICY=PASSIVE and size OpenBLAS's pool, as vae_mlp.py does); it is measured in both of
# its configurations for THREADS cores (THREADS torch threads, or 1 torch thread with THREADS OpenBLAS
# threads) and the faster one counts, with that run's peak RSS. latentlab runs with
# OMP_NUM_THREADS=THREADS. The two frameworks run alternately, three rounds per model, and the medians
# are compared. Each measurement lasts a few seconds (Google Benchmark's --benchmark_min_time, and a
# few warm-up steps and `repeats` x `steps` timed steps in python); the whole run takes about 4
# minutes on 2 cores. Needs a built tree (scripts/test.sh; only the bench_models target is used) and
# apt-get install python3-torch.
# Measure on a quiet machine: latentlab's OpenMP threads wait actively for each other, so other busy
# processes on the cores slow it far more than PyTorch, which waits passively
# (bench/results/dcgan28_cpu.md, "A warning about load"); the load before and after is printed.
# OMP_WAIT_POLICY=PASSIVE in the environment reaches latentlab too (the README's advice for a busy
# machine; the twins set it for PyTorch anyway); the policy latentlab ran with is printed.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
build=${BUILD_DIR:-build}
models=${MODELS:-dcgan28 dcgan64 vae-conv}
# PYTORCH_FREEZE_D=1: the GAN twins turn D's requires_grad off for G's pass, as latentlab's step does
# (models::gan_train_step; the same values, less work); by default they run pytorch/examples' step,
# which computes D's gradients in G's pass and discards them.
freeze_d=
[ "${PYTORCH_FREEZE_D:-0}" = 1 ] && freeze_d=--freeze-d
if [ -n "$freeze_d" ]; then echo "PyTorch GAN step: --freeze-d (D frozen for the G pass, as in latentlab)"; else echo "PyTorch GAN step: as pytorch/examples (D gradients computed in the G pass)"; fi
bench="$build/bench/bench_models"
[ -x "$bench" ] || { echo "no $bench: build first (bash scripts/test.sh)" >&2; exit 1; }
for m in $models; do
  case $m in
    dcgan28|dcgan64|vae-conv) ;;
    *) echo "unknown model '$m' in MODELS (dcgan28, dcgan64, vae-conv)" >&2; exit 1;;
  esac
done
# One OpenBLAS kernel set for both frameworks: the one latentlab restarts itself with where OpenBLAS
# takes this processor for an older one (kernels/gemm.h); PyTorch's matrix products use OpenBLAS too.
export OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-$("$bench" --print-blas-core)}
echo "OpenBLAS kernels: $OPENBLAS_CORETYPE"
echo "OMP_WAIT_POLICY for latentlab: ${OMP_WAIT_POLICY:-unset (the libgomp default: spin, then sleep)}"
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "PyTorch missing: apt-get install python3-torch" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
peak=(/usr/bin/python3 bench/tools/peak_rss.py "$tmp/rss" --)
img_per_s_gbench="import json,sys; print(json.load(sys.stdin)['benchmarks'][0]['img_per_s'])"
img_per_s_torch="import json,sys; text=sys.stdin.read(); print(json.loads(text[text.index('{'):])['images_per_second'])"
start=$SECONDS
echo "load before: $(uptime)"
for model in $models; do
  case $model in
    dcgan28)  filter='^BM_Dcgan28TrainStep/128/'; min_time=3
              py=(bench/pytorch/dcgan28.py bench --batch-size 128 --steps 5 --warmup 2 --repeats 3 ${freeze_d:+"$freeze_d"});;
    dcgan64)  filter='^BM_Dcgan64TrainStepCpu/64/'; min_time=3
              py=(bench/pytorch/dcgan64.py bench --batch-size 64 --steps 2 --warmup 1 --repeats 3 ${freeze_d:+"$freeze_d"});;
    vae-conv) filter='^BM_VaeConvTrainStep/128/'; min_time=2
              py=(bench/pytorch/vae_conv.py bench --batch-size 128 --steps 20 --warmup 3 --repeats 3);;
  esac
  for round in 1 2 3; do
    r=$(OMP_NUM_THREADS=$threads "${peak[@]}" "$bench" --benchmark_filter="$filter" --benchmark_min_time="$min_time" \
          --benchmark_format=json 2>/dev/null | /usr/bin/python3 -c "$img_per_s_gbench")
    r_kib=$(cat "$tmp/rss")
    t=0
    t_kib=0
    for cfg in "--threads $threads" "--threads 1 --blas-threads $threads"; do
      # shellcheck disable=SC2086  # cfg is two or four words
      v=$("${peak[@]}" /usr/bin/python3 "${py[@]}" $cfg --json - 2>/dev/null |
          /usr/bin/python3 -c "$img_per_s_torch")
      kib=$(cat "$tmp/rss")
      if /usr/bin/python3 -c "import sys; sys.exit(0 if $v > $t else 1)"; then t=$v; t_kib=$kib; fi
    done
    echo "$model $r $r_kib $t $t_kib" >> "$tmp/results"
    printf '%-8s round %d: latentlab %8.1f img/s %6.0f MiB   pytorch %8.1f img/s %6.0f MiB\n' \
      "$model" "$round" "$r" "$((r_kib / 1024))" "$t" "$((t_kib / 1024))"
  done
done
echo "load after: $(uptime)"
echo "($((SECONDS - start)) s)"
/usr/bin/python3 - "$threads" "$tmp/results" <<'PY'
import collections, platform, statistics, sys
threads, path = sys.argv[1], sys.argv[2]
rows = collections.OrderedDict()
for line in open(path):
    model, *vals = line.split()
    rows.setdefault(model, []).append([float(v) for v in vals])
titles = {
    "dcgan28": "DCGAN-28 GAN training step (ngf = ndf = 64, nz = 100, 1x28x28), batch 128, Fashion-MNIST",
    "dcgan64": "DCGAN-64 GAN training step (ngf = ndf = 64, nz = 100, 3x64x64), batch 64, random images",
    "vae-conv": "conv VAE training step (w 32, latent 20, beta 1, BCE, Adam 1e-3), batch 128, Fashion-MNIST",
}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
           platform.processor())
print(f"{threads} threads, {cpu}; medians of three rounds (PyTorch: its faster thread configuration each round)")
fmt = lambda vs, f: ", ".join(f % v for v in vs)
for model, rs in rows.items():
    ours, ours_kib, theirs, theirs_kib = (list(c) for c in zip(*rs))
    mo, mt = statistics.median(ours), statistics.median(theirs)
    ro, rt = statistics.median(ours_kib) / 1024, statistics.median(theirs_kib) / 1024
    print(titles[model])
    for name, speed, speeds, rss, kibs in (("latentlab", mo, ours, ro, ours_kib), ("pytorch", mt, theirs, rt, theirs_kib)):
        print(f"  {name:9} {speed:8.1f} img/s (median of {fmt(speeds, '%.1f')})   "
              f"peak RSS {rss:5.0f} MiB (of {fmt([k / 1024 for k in kibs], '%.0f')})")
    print(f"  ratio latentlab / pytorch: speed {mo / mt:.2f}, peak RSS {ro / rt:.2f}")
PY
