#!/usr/bin/env bash
# pytorch-check.sh: latentlab runs loaded in PyTorch, as docs/checkpoints.md shows. Trains five small
# runs (vae mlp, vae conv, ae, dcgan, cgan) on 512 (GANs: 128) Fashion-MNIST images, loads each into
# its PyTorch twin with bench/pytorch/load_run.py (load_state_dict strict=True, a forward pass), and
# for the autoencoders compares the encoder's numbers with latentlab's: the norms of the mean codes of
# two test images and their distance, as `latentlab interpolate` prints them, to 4 decimals.
#   bash scripts/pytorch-check.sh [BUILD_DIR]     (default: build; scripts/test.sh runs it)
# Needs Debian's PyTorch for /usr/bin/python3 (apt-get install python3-torch python3-numpy); where it
# is not installed, says so and exits 0 (a visible skip, like the GPU tests).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-${BUILD_DIR:-build}}
bin="$build/apps/latentlab"
if ! /usr/bin/python3 -c "import torch, numpy" 2> /dev/null; then
  echo "pytorch-check: skipped: no PyTorch for /usr/bin/python3 (apt-get install python3-torch python3-numpy)"
  exit 0
fi
[ -x "$bin" ] || { echo "pytorch-check: no $bin (build first)" >&2; exit 1; }
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
common=(--data fashion-mnist --epochs 1 --device cpu --seed 3)
"$bin" train vae "${common[@]}" --limit 512 --test-limit 100 --out "$scratch/vae" 2> /dev/null
"$bin" train vae --arch conv "${common[@]}" --limit 512 --test-limit 100 --out "$scratch/convvae" 2> /dev/null
"$bin" train ae "${common[@]}" --limit 512 --test-limit 100 --out "$scratch/ae" 2> /dev/null
"$bin" train dcgan "${common[@]}" --limit 128 --batch-size 64 --ngf 8 --ndf 8 --fid-n 0 --out "$scratch/dcgan" 2> /dev/null
"$bin" train cgan "${common[@]}" --limit 128 --batch-size 64 --ngf 8 --ndf 8 --fid-n 0 --out "$scratch/cgan" 2> /dev/null
for run in vae convvae ae; do
  torch_line=$(/usr/bin/python3 bench/pytorch/load_run.py "$scratch/$run" --code-norms 3,17)
  ours=$("$bin" interpolate "$scratch/$run" --from idx:3 --to idx:17 --out "$scratch/$run.png")
  /usr/bin/python3 - "$run" "$torch_line" "$ours" << 'PY'
import json, sys
run, torch_line, ours = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
pairs = [("from_norm", ours["from"]["norm"]), ("to_norm", ours["to"]["norm"]), ("distance", ours["distance"])]
bad = [(k, torch_line[k], v) for k, v in pairs if abs(torch_line[k] - v) > 1.5e-4]
print(f"pytorch-check: {run}: {torch_line['tensors']} tensors loaded strictly; PyTorch's codes "
      + ", ".join(f"{k} {torch_line[k]}" for k, _ in pairs) + ("  (latentlab's the same)" if not bad else ""))
if bad:
    sys.exit(f"pytorch-check: {run}: PyTorch and latentlab differ: {bad}")
PY
done
for run in dcgan cgan; do
  line=$(/usr/bin/python3 bench/pytorch/load_run.py "$scratch/$run")
  echo "pytorch-check: $run: $line"
done
echo "pytorch-check: passed"
