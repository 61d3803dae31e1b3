#!/usr/bin/env bash
# Installs what lathe needs on Debian 12 (or a derivative), builds it, lists the backends and
# trains the default config.
#   scripts/setup.sh                     install packages, build into ./build, train
#   BUILD_DIR=dir scripts/setup.sh       build elsewhere
#   LATHE_SKIP_TRAIN=1 scripts/setup.sh  everything but the training run
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake pkg-config
  libboost-dev libboost-filesystem-dev libspdlog-dev libfmt-dev libtomlplusplus-dev libcli11-dev
  nlohmann-json3-dev libgtest-dev libgmock-dev libopenblas-dev gnuplot-nox python3
  ocl-icd-opencl-dev opencl-c-headers pocl-opencl-icd libopenmpi-dev openmpi-bin
  libpcre2-dev zlib1g-dev libdrm-dev linux-libc-dev clang-19 lld-19 llvm-19 libclang-rt-19-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

build="${BUILD_DIR:-build}"
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release
cmake --build "$build" -j "$(nproc)"
echo "setup: built into $build (the lathe command is $build/bin/lathe)"
# Test data that may not be kept in the repository: Meta's Llama 3 tokenizer file (its tests skip without it).
scripts/fetch_llama3_tokenizer.sh "$build/llama3/tokenizer.model" || echo "setup: Meta's Llama 3 tokenizer not fetched; its tests will skip"
"$build/bin/lathe" backends
# The main job: train the default config (a small Llama on the built-in synthetic task).
if [ "${LATHE_SKIP_TRAIN:-0}" != "1" ]; then
  "$build/bin/lathe" train --set checkpoint.dir="$build/runs/default"
fi
