#!/usr/bin/env bash
# gan_fid_vs_pytorch.sh: DCGAN-28 (or cGAN-28) sample quality of latentlab and of its PyTorch twin at
# the same training budget, by latentlab's FID (apps/fid_eval.h), over several seeds.
#   bash bench/gan_fid_vs_pytorch.sh [EPOCHS] [SEEDS...]      (default: 5 epochs, seeds 1 2 3)
#   MODEL=cgan bash bench/gan_fid_vs_pytorch.sh 1 1 2 3       (the conditional GAN)
# Environment: MODEL (dcgan, the default: `train dcgan` beside bench/pytorch/dcgan28.py; cgan:
# `train cgan` beside bench/pytorch/cgan28.py), BATCH (default 64), OUT (default runs/fid_bench, and
# runs/fid_bench_cgan for MODEL=cgan), BUILD_DIR (default build).
# Same recipe on both sides: models/gan.h's dcgan28 or cgan28 (ngf = ndf = 64, nz = 100), DCGAN init, Adam 2e-4
# betas (0.5, 0.999), BCE-with-logits, batch BATCH, every epoch one pass over the 60,000 Fashion-MNIST
# training images (last partial batch dropped). Each side uses its own framework's random numbers
# for the initialization, the data order and the noise. Per seed, the two trainings run at the same
# time, one thread each. After every epoch: 5,000 samples with the generator in eval mode, FID
# against the 10,000 test images on the features of the classifier in runs/classifier-fashion-mnist
# (trained first if missing: `latentlab train classifier`). latentlab's FIDs come from its own
# metrics.jsonl, PyTorch's from `latentlab fid` on its per-epoch checkpoints (--seed 3; the samples'
# codes differ between the sides, their number does not). For the cGAN the samples cycle through the
# classes, and the mean per-class accuracy (the share of each intended class that the classifier
# assigns to it, averaged over the classes) is reported beside the FID: latentlab's from its
# metrics.jsonl (fid_per_class_accuracy), PyTorch's from `latentlab fid` (mean_class_accuracy).
# Prints one line per (seed, epoch), then per epoch the mean and standard deviation over the seeds,
# and the real-data floor.
# Needs a built tree (bash scripts/test.sh) and apt-get install python3-torch. Long: an epoch at batch 64
# takes about 3 minutes on one core for each side.
set -euo pipefail
cd "$(dirname "$0")/.."
epochs=${1:-5}
shift || true
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3)
model=${MODEL:-dcgan}
case "$model" in
  dcgan) twin=bench/pytorch/dcgan28.py name=DCGAN-28 default_out=runs/fid_bench ;;
  cgan) twin=bench/pytorch/cgan28.py name=cGAN-28 default_out=runs/fid_bench_cgan ;;
  *) echo "MODEL must be dcgan or cgan, got '$model'" >&2; exit 1 ;;
esac
batch=${BATCH:-64}
out=${OUT:-$default_out}
build=${BUILD_DIR:-build}
B="$build/apps/latentlab"
[ -x "$B" ] || { echo "no $B: build first (bash scripts/test.sh)" >&2; exit 1; }
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "PyTorch missing: apt-get install python3-torch" >&2; exit 1; }
clf=runs/classifier-fashion-mnist
[ -f "$clf/classifier.safetensors" ] || "$B" train classifier --data fashion-mnist --device cpu --out "$clf"
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"
for seed in "${seeds[@]}"; do
  ours="$out/latentlab_s$seed" theirs="$out/pytorch_s$seed"
  rm -rf "$ours" "$theirs"
  OMP_NUM_THREADS=1 "$B" train "$model" --data fashion-mnist --epochs "$epochs" --batch-size "$batch" --seed "$seed" \
    --device cpu --classifier "$clf" --out "$ours" > "$out/latentlab_s$seed.log" 2>&1 &
  ours_pid=$!
  /usr/bin/python3 "$twin" train --epochs "$epochs" --batch-size "$batch" --seed "$seed" --threads 1 \
    --epoch-checkpoints --out-dir "$theirs" > "$out/pytorch_s$seed.log" 2>&1
  wait "$ours_pid"
  for e in $(seq 1 "$epochs"); do
    # "FID ACCURACY" per side; ACCURACY is the mean per-class accuracy (cGAN) or null.
    read -r o oa < <(/usr/bin/python3 -c "
import json, sys
m = [json.loads(l) for l in open(sys.argv[1])][int(sys.argv[2]) - 1]
acc = m.get('fid_per_class_accuracy')
print(m['fid'], sum(acc) / len(acc) if acc else 'null')" "$ours/metrics.jsonl" "$e")
    read -r t ta < <("$B" fid "$theirs/epoch$e" --classifier "$clf" --seed 3 --device cpu 2>/dev/null |
        /usr/bin/python3 -c "import json,sys; r = json.load(sys.stdin); print(r['fid'], r.get('mean_class_accuracy', 'null'))")
    echo "{\"seed\": $seed, \"epoch\": $e, \"latentlab\": $o, \"pytorch\": $t, \"latentlab_class_accuracy\": $oa, \"pytorch_class_accuracy\": $ta}" >> "$results"
    if [ "$oa" = null ]; then
      printf 'seed %s epoch %s: FID latentlab %.2f  PyTorch %.2f\n' "$seed" "$e" "$o" "$t"
    else
      printf 'seed %s epoch %s: FID latentlab %.2f  PyTorch %.2f   mean class accuracy latentlab %.3f  PyTorch %.3f\n' \
        "$seed" "$e" "$o" "$t" "$oa" "$ta"
    fi
  done
done
floor=$("$B" fid "$out/pytorch_s${seeds[0]}/epoch1" --classifier "$clf" --floor --device cpu 2>/dev/null |
        /usr/bin/python3 -c "import json,sys; print(json.load(sys.stdin)['floor'])")
/usr/bin/python3 - "$results" "$floor" "$batch" "$name" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"{sys.argv[4]}, Fashion-MNIST, batch {sys.argv[3]}, FID of 5,000 eval-mode samples against the test split "
      f"(real training images: {float(sys.argv[2]):.2f})")
conditional = any(r.get('latentlab_class_accuracy') is not None for r in rows)
sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
head = f"{'epoch':>5} | {'latentlab mean':>14} {'sd':>6} | {'PyTorch mean':>12} {'sd':>6} | {'ratio':>5} | "
if conditional:  # the mean per-class accuracy of the classifier on the samples, mean and sd over the seeds
    head += f"{'class acc. latentlab':>20} {'sd':>5} | {'PyTorch':>7} {'sd':>5} | "
print(head + "seeds")
for e in sorted({r['epoch'] for r in rows}):
    a = [r['latentlab'] for r in rows if r['epoch'] == e]
    b = [r['pytorch'] for r in rows if r['epoch'] == e]
    line = (f"{e:5d} | {statistics.mean(a):14.2f} {sd(a):6.2f} | {statistics.mean(b):12.2f} {sd(b):6.2f} | "
            f"{statistics.mean(a) / statistics.mean(b):5.2f} | ")
    if conditional:
        aa = [r['latentlab_class_accuracy'] for r in rows if r['epoch'] == e]
        ba = [r['pytorch_class_accuracy'] for r in rows if r['epoch'] == e]
        line += f"{statistics.mean(aa):20.3f} {sd(aa):5.3f} | {statistics.mean(ba):7.3f} {sd(ba):5.3f} | "
    print(line + f"{len(a)}")
PY
