#!/usr/bin/env bash
# debias.sh: the DB-VAE experiment of bench/results/debias.md: the plain classifier and the DB-VAE
# (Amini et al. 2019), same network, same data, same steps, 3 seeds each, two runs at a time at one
# thread each, then `latentlab debias-report` over the six.
#   bash bench/debias.sh [OUT]      (default runs/debias; build/apps/latentlab must exist)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/apps/latentlab}
out=${1:-runs/debias}
mkdir -p "$out"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
flags=(--data fashion-mnist --epochs 20 --lr 3e-4 --batch-size 128 --latent-dim 8 --hidden 256 --bins 10 --alpha 0.3 --device cpu)
for seed in 1 2 3; do
  start=$(date +%s.%N)
  "$B" train dbvae "${flags[@]}" --debias off --seed "$seed" --out "$out/off$seed" 2> "$out/off$seed.log" &
  "$B" train dbvae "${flags[@]}" --debias on --seed "$seed" --out "$out/on$seed" 2> "$out/on$seed.log" &
  wait
  echo "seed $seed: both runs in $(echo "$(date +%s.%N) - $start" | bc) s"
done
"$B" debias-report "$out"/on1 "$out"/on2 "$out"/on3 "$out"/off1 "$out"/off2 "$out"/off3 --out "$out/report" --device cpu
