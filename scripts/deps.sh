#!/usr/bin/env bash
# deps.sh: makes sure the Debian packages latentlab builds with are installed.
#   bash scripts/deps.sh            # the build and test dependencies
# As root it installs what is missing with apt-get; otherwise it prints the apt-get line to run and
# exits nonzero. The CUDA toolkit is optional (it lives under /usr/local/cuda, not in Debian).
set -euo pipefail

# libcpp-httplib-dev: `latentlab serve` (apps/serve_http.cpp).
# openmpi-bin and libopenmpi-dev: the MPI communicator of engine/dist and its tests under mpirun
# (the build works without them, with --dist none only).
packages=(cmake ninja-build g++ make pkg-config libopenblas-dev libgtest-dev libbenchmark-dev
          nlohmann-json3-dev zlib1g-dev libcli11-dev libstb-dev libcpp-httplib-dev dataset-fashion-mnist python3
          openmpi-bin libopenmpi-dev)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "latentlab: missing Debian packages: ${missing[*]}" >&2
  echo "install them with:  sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "latentlab: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
