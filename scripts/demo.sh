#!/usr/bin/env bash
# demo.sh: the main job. On a fresh Debian 12 machine: installs what is missing (as root), builds
# latentlab, trains the MLP VAE on Fashion-MNIST (the pytorch/examples recipe: 784-400-20, Adam 1e-3,
# batch 128) and writes its pictures.
#   bash scripts/demo.sh
# Environment: OUT (default runs/demo), EPOCHS (default 10), DEVICE (default auto: CUDA when the
# build has CUDA kernels and a GPU is present, else CPU), BUILD_DIR (default build).
# Running it again continues the same run (--resume) and then just redraws the pictures.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh

build=${BUILD_DIR:-build}
out=${OUT:-runs/demo}
epochs=${EPOCHS:-10}
mkdir -p "$build"
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release > "$build/configure.log" 2>&1 || {
  cat "$build/configure.log"; exit 1; }
cmake --build "$build" --target latentlab -j "$(nproc)"
bin="$build/apps/latentlab"

resume=()
[ -f "$out/model.safetensors" ] && resume=(--resume)
"$bin" train vae --arch mlp --data fashion-mnist --epochs "$epochs" --device "${DEVICE:-auto}" --out "$out" "${resume[@]}"
"$bin" sample "$out" --n 64 --seed 0 --out "$out/samples.png"
"$bin" eval "$out" | tee "$out/eval.json"

echo
echo "latentlab demo: pictures in $out/"
echo "  $out/samples.png          64 images decoded from random codes z ~ N(0, I)"
echo "  $out/recon.png            test images (odd rows) above their reconstructions (even rows)"
echo "  $out/samples_epoch<N>.png the same fixed codes decoded after each epoch"
echo "  $out/metrics.jsonl        losses per epoch; $out/model.safetensors loads in PyTorch"
