#!/usr/bin/env bash
# browser-test.sh: the explorer of `latentlab serve` in a headless Chromium
# (tests/browser/explorer.test.mjs, driven by puppeteer-core).
#   bash scripts/browser-test.sh LATENTLAB_BIN [OUT_DIR]
# Builds nothing: LATENTLAB_BIN is the program to test (e.g. build/apps/latentlab). OUT_DIR (default
# build/browser-test) receives the screenshots explorer-vae.png and explorer-gan.png.
#
# Installs what is missing, as root: Debian's chromium, and nodejs and npm where there is no node
# >= 18 with npm; then puppeteer-core, at the version pinned in tests/browser/package-lock.json
# (24.43.1, the last release that supports node 18, Debian 12's), with `npm ci` into
# tests/browser/node_modules (ignored by git). Not root, it prints the apt-get line to run. Where
# one of these cannot be installed it prints "SKIP: <why>" and exits 0: the only case in which the
# stage does not run.
#
# Then, in a scratch folder: trains two tiny runs (a VAE on 2,000 Fashion-MNIST images, one epoch, and a
# conditional GAN on 2,048 for two epochs: seconds), starts `serve --port 0` on each, and runs the page test
# against both (every control, console errors, round-trip times; see the test's header). About 30 s
# on 2 cores. Exits nonzero when a check fails, with the servers' logs.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:?usage: bash scripts/browser-test.sh LATENTLAB_BIN [OUT_DIR]}
out=${2:-$here/build/browser-test}
[ -x "$bin" ] || { echo "browser-test: $bin is not an executable (build latentlab first)" >&2; exit 1; }
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
mkdir -p "$out"
out=$(cd "$out" && pwd)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

skip() {
  echo "browser-test: SKIP: $*"
  exit 0
}

# ---- what the stage needs ------------------------------------------------------------------------
apt_install() {  # packages...; returns nonzero when they cannot be installed
  if [ "$(id -u)" -ne 0 ]; then
    echo "browser-test: needs $*: sudo apt-get install -y $*" >&2
    return 1
  fi
  echo "browser-test: installing $*"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq > /dev/null && apt-get install -y -qq --no-install-recommends "$@" > /dev/null
}
node_ok() {
  command -v node > /dev/null && command -v npm > /dev/null &&
    [ "$(node -p 'Number(process.versions.node.split(".")[0])' 2>/dev/null || echo 0)" -ge 18 ]
}
chromium=${CHROMIUM:-$(command -v chromium || true)}
if [ -z "$chromium" ]; then
  apt_install chromium || skip "Chromium is not installed and cannot be installed here (Debian package chromium)"
  chromium=$(command -v chromium) || skip "apt-get installed chromium but there is no chromium command"
fi
if ! node_ok; then
  apt_install nodejs npm || skip "node >= 18 and npm are not installed and cannot be installed here (Debian: nodejs npm)"
  node_ok || skip "node >= 18 with npm is needed; found node $(node --version 2>/dev/null || echo none)"
fi
pinned=$(node -p 'require(process.argv[1]).packages["node_modules/puppeteer-core"].version' "$here/tests/browser/package-lock.json")
have=$(node -p 'try { require(process.argv[1]).version } catch { "" }' "$here/tests/browser/node_modules/puppeteer-core/package.json" 2>/dev/null || true)
if [ "$have" != "$pinned" ]; then
  echo "browser-test: installing puppeteer-core $pinned (npm ci in tests/browser)"
  (cd "$here/tests/browser" && npm ci --no-audit --no-fund --loglevel=error > /dev/null) ||
    skip "npm could not install puppeteer-core $pinned from the npm registry"
fi

# ---- two tiny runs, a server on each -------------------------------------------------------------
scratch=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
  rm -rf "$scratch"
}
trap cleanup EXIT
start=$(date +%s)
"$bin" train vae --data fashion-mnist --epochs 1 --limit 2000 --seed 1 --out "$scratch/vae" > "$scratch/train-vae.log" 2>&1 ||
  { cat "$scratch/train-vae.log"; exit 1; }
"$bin" train cgan --data fashion-mnist --epochs 2 --limit 2048 --batch-size 64 --ngf 16 --ndf 16 --nz 32 --seed 1 \
  --out "$scratch/gan" > "$scratch/train-gan.log" 2>&1 || { cat "$scratch/train-gan.log"; exit 1; }
echo "browser-test: trained a VAE and a conditional GAN in $(( $(date +%s) - start )) s"

# Starts `serve --port 0` on run $1 and sets `url` to its URL, read from the JSON line it prints
# once it listens. (Not in a $(...) subshell: the server's pid must reach `pids`, for cleanup.)
serve() {
  local name=$1
  "$bin" serve "$scratch/$name" --port 0 > "$scratch/serve-$name.out" 2> "$scratch/serve-$name.err" &
  pids+=($!)
  url=""
  for _ in $(seq 1 600); do
    url=$(sed -n 's/.*"url":"\([^"]*\)".*/\1/p' "$scratch/serve-$name.out")
    [ -n "$url" ] && break
    kill -0 "${pids[-1]}" 2> /dev/null || break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "browser-test: serve $name did not start:" >&2
    cat "$scratch/serve-$name.err" >&2
    exit 1
  fi
}
serve vae
vae_url=$url
serve gan
gan_url=$url

status=0
CHROMIUM=$chromium node "$here/tests/browser/explorer.test.mjs" "$out" "vae=$vae_url" "gan=$gan_url" || status=$?
if [ "$status" -ne 0 ]; then
  for f in "$scratch"/serve-*.err; do
    echo "--- $(basename "$f")" >&2
    tail -20 "$f" >&2
  done
fi
echo "browser-test: $( [ "$status" -eq 0 ] && echo passed || echo FAILED ) in $(( $(date +%s) - start )) s; screenshots in $out"
exit "$status"
