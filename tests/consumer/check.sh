#!/usr/bin/env bash
# Installs the built lathe into a scratch prefix, builds the consumer project against it with
# find_package(lathe), runs it, and checks that it learned y = 3x - 1.
set -euo pipefail
build_dir="$1"; source_dir="$(cd "$(dirname "$0")" && pwd)"
prefix="$build_dir/install-check"
rm -rf "$prefix" "$build_dir/consumer-build"
cmake --install "$build_dir" --prefix "$prefix" > /dev/null
cmake -S "$source_dir" -B "$build_dir/consumer-build" -DCMAKE_PREFIX_PATH="$prefix" > /dev/null
cmake --build "$build_dir/consumer-build" > /dev/null
out=$(LATHE_PLUGIN_PATH= "$build_dir/consumer-build/consumer")
echo "$out"
[ "$out" = "w=3.000 b=-1.000" ]
