#!/usr/bin/env bash
# Builds the parsers' libFuzzer targets (tests/fuzz/) with clang-19, ASan and UBSan, and runs
# each for FUZZ_SECONDS (default 20) from its seed corpus; fails on any finding.
#   scripts/fuzz.sh                    every target, 20 s each (CI)
#   FUZZ_SECONDS=600 scripts/fuzz.sh npy safetensors   longer runs of chosen targets
#   FUZZ_RUNS=10000000 scripts/fuzz.sh                  a number of executions instead of a time
# Needs a normal build in BUILD_DIR (default build) for liblathe.so; writes into build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"; out=build-fuzz; seconds="${FUZZ_SECONDS:-20}"
targets=("$@"); ((${#targets[@]})) || targets=(npy token_bin safetensors llama_config train_config)
cxx=clang++-19
command -v "$cxx" >/dev/null || { echo "fuzz: $cxx is missing (apt-get install clang-19 libclang-rt-19-dev)"; exit 1; }
mkdir -p "$out"
flags=(-std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -Icore/include -Iops/include -Imodels/include -Iapps -DTOML_HEADER_ONLY=0 -DTOML_SHARED_LIB=1)
link=(-L"$build/lib" -llathe -Wl,-rpath,"$PWD/$build/lib")
# Each target compiles the parser it fuzzes (instrumented); the rest of lathe comes from liblathe.so,
# and TOML parsing from Debian's libtomlplusplus.so, as lathe ships (lathe's checks before and after
# it are what the train_config target covers).
declare -A sources=(
  [npy]="models/src/npy.cpp models/src/atomic_file.cpp"
  [token_bin]="models/src/data.cpp models/src/npy.cpp models/src/atomic_file.cpp"
  [safetensors]="models/src/safetensors.cpp models/src/atomic_file.cpp"
  [llama_config]="models/src/llama_config.cpp"
  [train_config]="apps/train/config.cpp -ltomlplusplus")
export ASAN_OPTIONS="detect_leaks=0" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
for t in "${targets[@]}"; do
  [ -n "${sources[$t]:-}" ] || { echo "fuzz: no target $t (${!sources[*]})"; exit 1; }
  # shellcheck disable=SC2086
  "$cxx" "${flags[@]}" "tests/fuzz/fuzz_$t.cpp" ${sources[$t]} "${link[@]}" -o "$out/fuzz_$t"
  mkdir -p "$out/corpus/$t" "$out/findings/$t"
  dict=(); case "$t" in safetensors|llama_config) dict=(-dict=tests/fuzz/json.dict);; esac
  limit=(-max_total_time="$seconds"); [ -n "${FUZZ_RUNS:-}" ] && limit=(-runs="$FUZZ_RUNS")
  "$out/fuzz_$t" "$out/corpus/$t" "tests/fuzz/seeds/$t" "${dict[@]}" "${limit[@]}" -max_len=4096 \
    -artifact_prefix="$out/findings/$t/" -print_final_stats=1 2>"$out/fuzz_$t.log" || {
    tail -40 "$out/fuzz_$t.log"; echo "fuzz: $t found a crash (input in $out/findings/$t/)"; exit 1; }
  echo "fuzz: $t: $(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/fuzz_$t.log" | grep -o '[0-9]*$') inputs in $(grep -o 'Done [0-9]* runs in [0-9]* second' "$out/fuzz_$t.log" | grep -o '[0-9]* second' | grep -o '[0-9]*') s, no crash"
done
