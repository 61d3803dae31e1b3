#!/usr/bin/env bash
# bf16 training on the opencl backend with the emulated matrix unit (PoCL) follows the float
# path within bfloat16's noise: the same tiny model, 40 steps, with LATHE_OPENCL_MATRIX_UNITS
# emulate and off; every logged loss agrees within 3% and the final one falls below the first.
set -euo pipefail
lathe="$1"; work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$work"
# Widths of 32 and 64 (multiples of the unit's 16 x 8 fragments and 32-step passes).
run=(--set backend.name=opencl --set train.precision=bf16 --set model.hidden_size=64 --set model.intermediate_size=128
     --set model.num_heads=2 --set model.num_kv_heads=2 --set model.num_layers=1 --set data.synthetic_vocab=64
     --set train.batch_size=4 --set train.seq_len=32 --set train.steps=40 --set eval.every=0 --set eval.batches=1
     --set log.every=1 --set log.plot=false --set checkpoint.export_hf=false)
LATHE_OPENCL_MATRIX_UNITS=emulate LATHE_DEBUG=2 "$lathe" train "${run[@]}" --set checkpoint.dir=mma > mma.out 2>&1 || { tail -20 mma.out; exit 1; }
LATHE_OPENCL_MATRIX_UNITS=off "$lathe" train "${run[@]}" --set checkpoint.dir=float > float.out 2>&1 || { tail -20 float.out; exit 1; }
used=$(grep -c "mma(" mma.out || true)
[ "$used" -gt 0 ] || { grep "kernel " mma.out | head; echo "no kernel took the matrix unit"; exit 1; }
python3 - mma/metrics.jsonl float/metrics.jsonl <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(p) if '"loss"' in l] for p in sys.argv[1:])
pairs = [(x["loss"], y["loss"]) for x, y in zip(a, b) if "step" in x]
assert len(pairs) >= 40, "expected 40 logged steps, got %d" % len(pairs)
worst = max(abs(x - y) / abs(y) for x, y in pairs)
print("matrix unit vs float path: %d steps, largest relative difference %.4f, losses %.3f -> %.3f" % (len(pairs), worst, pairs[0][0], pairs[-1][0]))
assert worst < 0.03, "losses differ by more than 3%"
assert pairs[-1][0] < pairs[0][0], "the loss did not fall"
PY
echo "kernels on the matrix unit: $used"
