#!/usr/bin/env bash
# Across backends: with no OpenCL platform `lathe backends` says why opencl is unusable; where
# opencl works, a short training run on it follows the cpu run's loss curve within float32
# rounding.
set -euo pipefail
lathe="$1"; work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$work"
mkdir empty_vendors
OCL_ICD_VENDORS="$work/empty_vendors" "$lathe" backends > none.out
if grep -q "^opencl" none.out; then
  grep -A2 "^opencl" none.out | grep -q "reason  no OpenCL platform" || { cat none.out; exit 1; }
  echo "without a platform: $(grep -A2 '^opencl' none.out | grep reason)"
fi
if ! "$lathe" backends | grep -q "^opencl .*usable"; then echo "opencl not usable here: skipping the training comparison"; exit 0; fi
small=(--set model.hidden_size=32 --set model.intermediate_size=64 --set model.num_heads=2 --set model.num_kv_heads=1
       --set model.num_layers=1 --set data.synthetic_vocab=16 --set train.batch_size=4 --set train.seq_len=16
       --set train.steps=20 --set eval.every=10 --set eval.batches=2 --set checkpoint.every=0 --set log.plot=false
       --set checkpoint.export_hf=false --set log.every=1)
"$lathe" train "${small[@]}" --set checkpoint.dir=cpu > cpu.out 2>&1
"$lathe" train "${small[@]}" --set checkpoint.dir=cl --set backend.name=opencl > cl.out 2>&1 || { cat cl.out; exit 1; }
python3 - cpu/metrics.jsonl cl/metrics.jsonl <<'PY'
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:3])
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
assert len(a) == len(b) == 20 and worst < 1e-4, worst
print("opencl follows cpu over 20 steps: largest relative loss difference %.2e" % worst)
PY

# The compiler helper beside the plugin: a binary for a good source (exit 0), the build log
# for a bad one (exit 1), a usage error for a device that is not there (exit 2).
helper="$(dirname "$("$lathe" backends | grep -oP '^opencl +usable +\K\S+')")/lathe_opencl_compiler"
device="$("$lathe" backends | grep -oP '^ +device +opencl:0 \K.*')"
platform="${device% / *}"; device="${device#* / }"
echo '__kernel void k(__global float* a) { a[get_global_id(0)] *= 2.0f; }' > good.cl
echo '__kernel void k(__global float* a) { a[get_global_id(0)] *= not_declared; }' > bad.cl
"$helper" "$platform" "$device" -cl-std=CL1.2 good.cl good.bin && [ -s good.bin ] || { echo "the helper built no binary"; exit 1; }
rc=0; "$helper" "$platform" "$device" -cl-std=CL1.2 bad.cl bad.bin 2> bad.log || rc=$?
[ "$rc" -eq 1 ] && grep -q not_declared bad.log && [ ! -e bad.bin ] || { echo "a bad source: exit $rc"; cat bad.log; exit 1; }
rc=0; "$helper" "no such platform" "$device" -cl-std=CL1.2 good.cl none.bin 2> none.log || rc=$?
[ "$rc" -eq 2 ] || { echo "no such platform: exit $rc"; exit 1; }
echo "compiler helper: builds a binary, reports a bad source and a missing device"

# Kernels built in batches: with binary caching on (as on GPU platforms; PoCL has it off), the
# first run leaves shared program binaries and per-kernel references to them, and a second run
# loads its kernels from those and logs the same losses. The first run builds every batch in
# a helper process (LATHE_OPENCL_COMPILE_PROCESSES=1), none falling back to this process.
export LATHE_CACHE_DIR="$work/cache" LATHE_OPENCL_BINARY_CACHE=1
LATHE_OPENCL_COMPILE_PROCESSES=1 "$lathe" train "${small[@]}" --set checkpoint.dir=cl_cold --set backend.name=opencl > cl_cold.out 2>&1 ||
  { cat cl_cold.out; exit 1; }
if grep -q "building in this process" cl_cold.out; then grep "building in this process" cl_cold.out; exit 1; fi
diff <(python3 -c "import json,sys; print([json.loads(l)['loss'] for l in open(sys.argv[1])])" cl/metrics.jsonl) \
     <(python3 -c "import json,sys; print([json.loads(l)['loss'] for l in open(sys.argv[1])])" cl_cold/metrics.jsonl) ||
  { echo "a run built by helper processes logs other losses than one built in-process"; exit 1; }
refs=$(find "$LATHE_CACHE_DIR" -name '*.ref' | wc -l)
[ "$refs" -gt 0 ] || { echo "no kernel refers to a shared program binary"; exit 1; }
touch cold_done; sleep 1
"$lathe" train "${small[@]}" --set checkpoint.dir=cl_warm --set backend.name=opencl > cl_warm.out 2>&1 || { cat cl_warm.out; exit 1; }
rebuilt=$(find "$LATHE_CACHE_DIR" -name '*.bin' -newer cold_done | wc -l)
[ "$rebuilt" -eq 0 ] || { echo "the warm run rebuilt $rebuilt program binaries instead of loading them"; exit 1; }
diff <(python3 -c "import json,sys; print([json.loads(l)['loss'] for l in open(sys.argv[1])])" cl_cold/metrics.jsonl) \
     <(python3 -c "import json,sys; print([json.loads(l)['loss'] for l in open(sys.argv[1])])" cl_warm/metrics.jsonl) ||
  { echo "a run from cached batch binaries logs other losses"; exit 1; }
echo "batched programs: $refs kernels cached as references into shared binaries; a warm run reproduces the losses"
