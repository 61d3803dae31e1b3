#!/usr/bin/env bash
# On a machine with an AMD GPU and the amdgpu driver: checks the amd_kfd backend end to end and
# prints a pass/fail table. Run scripts/setup.sh first (or set BUILD_DIR).
set -uo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
lathe="$build/bin/lathe"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
results=()
check() {  # name, command...
  local name="$1"; shift
  if "$@" > "$work/$name.log" 2>&1; then results+=("| $name | pass |"); else results+=("| $name | FAIL (log: $work/$name.log) |"); cp "$work/$name.log" "/tmp/lathe-amd-$name.log"; fi
}
check backends bash -c "'$lathe' backends | grep -A1 '^amd_kfd' | grep -q 'usable' && '$lathe' backends | grep 'amd_kfd:'"
check unit_tests "$build/bin/lathe_amd_kfd_tests"
check conformance "$build/bin/lathe_tests" "--gtest_filter=*/amd_kfd*"
small=(--set model.hidden_size=32 --set model.intermediate_size=64 --set model.num_heads=2 --set model.num_kv_heads=1
       --set model.num_layers=1 --set data.synthetic_vocab=16 --set train.batch_size=4 --set train.seq_len=16
       --set train.steps=20 --set eval.every=10 --set eval.batches=2 --set checkpoint.every=0 --set log.plot=false
       --set checkpoint.export_hf=false --set log.every=1)
check training bash -c "cd '$work' && '$PWD/$lathe' train ${small[*]} --set checkpoint.dir=cpu && '$PWD/$lathe' train ${small[*]} --set checkpoint.dir=amd --set backend.name=amd_kfd && python3 -c \"
import json
a, b = ([json.loads(l)['loss'] for l in open(p)] for p in ('cpu/metrics.jsonl', 'amd/metrics.jsonl'))
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b)); print('largest relative loss difference', worst); assert worst < 1e-3\""
check bench "$lathe" bench --backend amd_kfd --sizes "${BENCH_SIZES:-1024,4096}" --repeat 3
echo "| check | result |"
echo "| --- | --- |"
printf '%s\n' "${results[@]}"
grep -h "GFLOP/s\|GB/s" "$work/bench.log" 2>/dev/null || true
