#!/usr/bin/env bash
# debias.sh: the DB-VAE experiment of bench/results/debias.md: the plain classifier and the DB-VAE
# (Amini et al. 2019), same network, same data, same steps, one run of each per seed (two at a time,
# one thread each), then the ablation (alpha 1e6: the VAE term with a uniform draw) per seed, and
# `latentlab debias-report` over the on/off runs (OUT/report) and over the ablation (OUT/report-uniform).
#   bash bench/debias.sh [OUT] [SEEDS]     (defaults: runs/debias, "1 2 3 4 5 6"; needs build/apps/latentlab)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-build/apps/latentlab}
out=${1:-runs/debias}
seeds=${2:-1 2 3 4 5 6}
mkdir -p "$out"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
flags=(--data fashion-mnist --epochs 20 --lr 3e-4 --batch-size 128 --latent-dim 8 --hidden 256 --bins 10 --device cpu)
on=() off=() uniform=()
for seed in $seeds; do
  start=$(date +%s.%N)
  "$B" train dbvae "${flags[@]}" --alpha 0.3 --debias off --seed "$seed" --out "$out/off$seed" 2> "$out/off$seed.log" &
  "$B" train dbvae "${flags[@]}" --alpha 0.3 --debias on --seed "$seed" --out "$out/on$seed" 2> "$out/on$seed.log" &
  wait
  echo "seed $seed: off and on in $(echo "$(date +%s.%N) - $start" | bc) s"
  "$B" train dbvae "${flags[@]}" --alpha 1e6 --debias on --seed "$seed" --out "$out/uniform$seed" 2> "$out/uniform$seed.log"
  on+=("$out/on$seed") off+=("$out/off$seed") uniform+=("$out/uniform$seed")
done
"$B" debias-report "${on[@]}" "${off[@]}" --out "$out/report" --device cpu
"$B" debias-report "${uniform[@]}" --out "$out/report-uniform" --device cpu
