#!/usr/bin/env bash
# The unit tests under AddressSanitizer + UndefinedBehaviorSanitizer, on the cpu backend, with
# the generated kernels compiled with the same sanitizers (so their out-of-bounds accesses are
# caught too). Usage: scripts/sanitize.sh [gtest filter]; BUILD_DIR (default build-sanitize).
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build-sanitize}"
# -O1 -g1 (line tables): stack traces keep file and line, and the build takes about half the time
# of -O2 -g on the 2-core CI machine (7.7 against 15.3 minutes, each measured with other work running beside it).
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=None -DCMAKE_C_FLAGS="-O1 -g1" -DCMAKE_CXX_FLAGS="-O1 -g1" -DLATHE_SANITIZE=ON >/dev/null
cmake --build "$build" -j "$(nproc)" --target lathe_tests lathe_cpu 2>&1 | grep -E " error: " || true
# Plugins and the lowering cache are leaked on purpose (they live until exit): no leak check.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export LATHE_CFLAGS="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
export LATHE_CACHE_DIR="$build/kernel_cache"  # kernels built with the sanitizers, apart from the others
# OpenCL runs inside PoCL's own compiler and runtime, which are not built with the sanitizers.
# The 8B-sized test (2.3 GB of weights, 40 s under the sanitizers) runs unsanitized in ctest.
"$build/bin/lathe_tests" --gtest_filter="${1:-*}:-*/opencl:LlamaModel.EightBillion*" --gtest_brief=1
