#!/usr/bin/env bash
# dist_train.sh: data-parallel training throughput on this machine (docs/distributed.md), for
#   vae    the MLP VAE (784-400-20, batch 128, all 60,000 Fashion-MNIST images: 469 steps an epoch)
#   dcgan  DCGAN-28 (batch 128, the first 12,800 Fashion-MNIST images: 100 steps an epoch, no FID)
# the same training as
#   one process, 2 threads          latentlab train vae
#   one process, 1 thread
#   2 ranks, 1 thread each          mpirun -np 2 latentlab train vae
# three rounds alternately; img/s of the training steps of each run's last epoch (metrics.jsonl's
# img_per_s) and, for 2 ranks, the all-reduce's ms per step (all_reduce_ms_per_step: the exchange of
# the gradient, 650,000 floats for the VAE, 900,000 for DCGAN-28's G and D together, waiting for the
# slower rank included). Medians are printed.
#   BUILD_DIR=build bash bench/dist_train.sh vae|dcgan [EPOCHS]     (default 2)
# Needs a built tree with MPI (scripts/deps.sh installs openmpi-bin libopenmpi-dev). Measure on a
# quiet machine: OpenMP threads spin-wait for each other, so other load skews every figure.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-vae}
epochs=${2:-2}
bin=${BUILD_DIR:-build}/apps/latentlab
[ -x "$bin" ] || { echo "no $bin: build first (bash scripts/test.sh)" >&2; exit 1; }
command -v mpirun > /dev/null || { echo "no mpirun: apt-get install openmpi-bin libopenmpi-dev" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OPENBLAS_NUM_THREADS=1
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
case "$model" in
  vae) args=(train vae --data fashion-mnist --test-limit 1000 --epochs "$epochs" --batch-size 128 --device cpu) ;;
  dcgan) args=(train dcgan --data fashion-mnist --limit 12800 --fid-n 0 --epochs "$epochs" --batch-size 128 --device cpu) ;;
  *) echo "usage: bash bench/dist_train.sh vae|dcgan [EPOCHS]" >&2; exit 1 ;;
esac
field() { /usr/bin/python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1]).get(sys.argv[2], 0))" "$1/metrics.jsonl" "$2"; }
median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
one2=(); one1=(); two=(); ms=()
for round in 1 2 3; do
  OMP_NUM_THREADS=2 "$bin" "${args[@]}" --out "$scratch/a$round" 2> /dev/null
  one2+=("$(field "$scratch/a$round" img_per_s)")
  OMP_NUM_THREADS=1 "$bin" "${args[@]}" --out "$scratch/b$round" 2> /dev/null
  one1+=("$(field "$scratch/b$round" img_per_s)")
  mpirun -np 2 --oversubscribe -x OMP_NUM_THREADS=1 "$bin" "${args[@]}" --out "$scratch/c$round" 2> /dev/null
  two+=("$(field "$scratch/c$round" img_per_s)")
  ms+=("$(field "$scratch/c$round" all_reduce_ms_per_step)")
  echo "round $round: 1 process 2 threads ${one2[-1]} img/s, 1 thread ${one1[-1]}, 2 ranks ${two[-1]} (all-reduce ${ms[-1]} ms/step)"
done
echo "median img/s: 1 process 2 threads $(median "${one2[@]}"), 1 process 1 thread $(median "${one1[@]}"), 2 ranks x 1 thread $(median "${two[@]}"); all-reduce $(median "${ms[@]}") ms/step"
