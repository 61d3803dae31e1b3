#!/usr/bin/env bash
# Prepares .device/ for scripts/device_opencl.sh: the Debian packages a bare Ubuntu machine
# without network lacks (unpacked there into a private prefix), and the benchmark corpus and
# PyTorch reference script from ../shared (outside the repository, so not carried otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .device/debs
(cd .device/debs && apt-get download -q \
  libboost1.74-dev libboost-filesystem1.74-dev libboost-filesystem1.74.0 libboost-system1.74-dev libboost-system1.74.0 \
  libspdlog-dev libspdlog1.10 libfmt-dev libfmt9 libcli11-dev libtomlplusplus-dev libtomlplusplus3 nlohmann-json3-dev \
  libgtest-dev googletest ocl-icd-opencl-dev ocl-icd-libopencl1 opencl-c-headers libpcre2-dev zlib1g-dev 2>/dev/null)
cp ../shared/data/tinyshakespeare.txt ../shared/bench/ref_shakespeare.py ../shared/bench/ref_llama_scale.py .device/
du -sh .device
