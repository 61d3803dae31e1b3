#!/usr/bin/env bash
# The bad-input catalogue, replayed: each case must end with exit code 1 (no crash, no signal),
# one error naming what is wrong, and (for run folders) every file left as it was.
set -uo pipefail
lathe="$(realpath "$1")"; fixture="$(realpath "$2")"; work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$work"
failed=0; cases=0
# expect NAME REGEX -- COMMAND...: exit code 1 and stderr matching REGEX (extended, case-insensitive).
expect() {
  local name="$1" want="$2"; shift 3
  cases=$((cases + 1))
  "$@" >out.txt 2>err.txt; local rc=$?
  if [ "$rc" -ne 1 ] || grep -qiE "terminate called|Aborted|Segmentation|AddressSanitizer" err.txt || ! grep -qiE "$want" err.txt; then
    echo "FAIL [$name]: exit $rc, stderr:"; sed 's/^/    /' err.txt | tail -5; failed=$((failed + 1))
  else
    echo "ok   [$name] $(grep -iE "$want" err.txt | head -1 | sed 's/.*\] //' | cut -c1-150)"
  fi
}
snapshot() { (cd "$1" && find . -type f ! -name '*.tmp' -exec md5sum {} + | sort); }
unchanged() {  # NAME DIR BEFORE
  cases=$((cases + 1))
  if [ "$(snapshot "$2")" = "$3" ]; then echo "ok   [$1] nothing in $2 changed"; else echo "FAIL [$1]: $2 changed"; failed=$((failed + 1)); fi
}
quick=(--set train.steps=4 --set checkpoint.every=2 --set eval.every=0 --set log.plot=false --set log.mllog=false)

# --- run folders: a run belongs to one model; nothing is overwritten or deleted ---
"$lathe" train "${quick[@]}" --set checkpoint.dir=run >/dev/null 2>&1 || { echo "the reference run failed"; exit 1; }
before="$(snapshot run)"
expect "wider model over a run" "model.hidden_size = 128.*the run has 64.*checkpoint.dir" -- "$lathe" train "${quick[@]}" --set checkpoint.dir=run --set model.hidden_size=128
expect "fewer layers over a run" "model.num_layers = 1 \(the run has 2\)" -- "$lathe" train "${quick[@]}" --set checkpoint.dir=run --set model.num_layers=1
expect "resume = never over a run" "already holds a run.*checkpoint.dir" -- "$lathe" train "${quick[@]}" --set checkpoint.dir=run --set checkpoint.resume=never
unchanged "rerun with another model" run "$before"
# Checkpoints without run.json (written by an older lathe) are checked tensor by tensor.
cp -r run legacy && rm legacy/run.json && before="$(snapshot legacy)"
expect "legacy run, fewer layers" "step_00000004: it holds 21 tensors, the model has 12" -- "$lathe" train "${quick[@]}" --set checkpoint.dir=legacy --set model.num_layers=1 --set train.steps=8
unchanged "legacy run, fewer layers" legacy "$before"
# 4 KB of a checkpoint overwritten: its checksum no longer matches.
cp -r run damaged
for d in damaged/checkpoints/*/; do dd if=/dev/urandom of="$d/model.safetensors" bs=4096 seek=4 count=1 conv=notrunc 2>/dev/null; done
before="$(snapshot damaged)"
expect "every checkpoint damaged" "step_00000004: model.safetensors does not match its checksum" -- "$lathe" train "${quick[@]}" --set checkpoint.dir=damaged --set train.steps=8
unchanged "every checkpoint damaged" damaged "$before"
# A step whose update is not finite is never checkpointed; the message names the last intact one.
expect "diverging run" "stopped without writing a checkpoint \((the last intact one is .*step_[0-9]+|none was written yet)\)" -- \
  "$lathe" train --set train.steps=60 --set checkpoint.every=1 --set optimizer.lr=10 --set optimizer.grad_clip=0 \
  --set schedule.warmup_steps=0 --set eval.every=0 --set log.plot=false --set checkpoint.dir=diverged
python3 - diverged <<'PY' || { echo "FAIL [diverging run]: a checkpoint holds non-finite weights"; failed=$((failed + 1)); }
import json, math, struct, sys, glob
for f in glob.glob(sys.argv[1] + "/checkpoints/*/model.safetensors"):
    data = open(f, "rb").read(); n = struct.unpack("<Q", data[:8])[0]
    vals = struct.unpack("<%df" % ((len(data) - 8 - n) // 4), data[8 + n:])
    assert all(math.isfinite(v) for v in vals), f
PY

# --- folders and configs checked before the first step ---
touch afile
expect "checkpoint.dir is a file" "checkpoint.dir = afile is a file" -- "$lathe" train "${quick[@]}" --set checkpoint.dir=afile
expect "checkpoint.dir cannot be created" "checkpoint.dir = /proc/lathe-run cannot be created" -- "$lathe" train "${quick[@]}" --set checkpoint.dir=/proc/lathe-run
mkdir -p confdir
expect "a folder as CONFIG" "config confdir is a folder" -- "$lathe" train confdir
expect "integer out of the field's range" "train.steps = 99999999999 is out of range" -- "$lathe" train --set train.steps=99999999999
expect "negative memory limit" "memory_limit_mib must be a positive whole number" -- "$lathe" train "${quick[@]}" --set checkpoint.dir=mem --set "backend.options={memory_limit_mib=-5}"
expect "LATHE_CPU_THREADS=abc" "LATHE_CPU_THREADS = 'abc' is not a thread count" -- env LATHE_CPU_THREADS=abc "$lathe" train "${quick[@]}" --set checkpoint.dir=thr
expect "LATHE_CC missing" "LATHE_CC = /nonexistent/cc is not an executable" -- env LATHE_CC=/nonexistent/cc LATHE_CACHE_DIR="$work/nocache" "$lathe" train "${quick[@]}" --set checkpoint.dir=cc
printf 'hello world, a small text of few tokens\n' > tiny.txt
expect "empty validation split" "validation split holds [0-9]+ tokens, fewer than one window" -- "$lathe" train "${quick[@]}" --set checkpoint.dir=val --set data.source=file --set data.path=tiny.txt --set data.val_fraction=0 --set train.seq_len=8
expect "batch that cannot be allocated" "logits alone take [0-9]+ GiB, more than" -- "$lathe" train "${quick[@]}" --set checkpoint.dir=big --set train.batch_size=10000000 --set train.seq_len=10000000

# --- token files ---
python3 - <<'PY'
import struct
def npy(name, header, data=b""):
    h = header.encode(); h += b" " * ((64 - (10 + len(h) + 1) % 64) % 64) + b"\n"
    open(name, "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data)
npy("long_descr.npy", "{'descr': '" + "<" * 60000 + "i4', 'fortran_order': False, 'shape': (4,), }", b"\0" * 16)
npy("long_shape.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': (" + "1, " * 20000 + "), }", b"\0" * 4)
npy("wrapping_shape.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", b"\0" * 4096)
npy("huge_extent.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", b"\0" * 16)
npy("empty_batch.npy", "{'descr': '<i4', 'fortran_order': False, 'shape': (0, 5), }")
header = [20240520, 1, -1] + [0] * 253
open("minus_one.bin", "wb").write(struct.pack("<256i", *header) + b"\0" * 64)
open("odd.bin", "wb").write(b"\1\0\2\0\3")
PY
for f in long_descr long_shape wrapping_shape huge_extent; do
  expect "$f.npy as tokens" "$f.npy:" -- "$lathe" eval --model "$fixture" --tokens $f.npy
done
expect "batch of 0 sequences" "batch >= 1" -- "$lathe" eval --model "$fixture" --tokens empty_batch.npy
expect "llm.c header count -1" "token count is -1" -- "$lathe" train "${quick[@]}" --set checkpoint.dir=bin1 --set data.source=file --set data.path=minus_one.bin
expect "odd-length uint16 .bin" "odd" -- "$lathe" train "${quick[@]}" --set checkpoint.dir=bin2 --set data.source=file --set data.path=odd.bin

# --- model folders: config.json, safetensors and its index ---
model_case() {  # NAME REGEX PYTHON-EDIT: a copy of the fixture edited by the Python snippet
  rm -rf m && cp -r "$fixture" m && python3 -c "import json, struct
def cfg(k, v):
    c = json.load(open('m/config.json')); c[k] = v; json.dump(c, open('m/config.json', 'w'))
def st_header(edit, path='m/model.safetensors'):
    d = open(path, 'rb').read(); n = struct.unpack('<Q', d[:8])[0]; h = json.loads(d[8:8 + n]); edit(h)
    t = json.dumps(h).encode(); t += b' ' * ((8 - len(t) % 8) % 8)
    open(path, 'wb').write(struct.pack('<Q', len(t)) + t + d[8 + n:])
$3" && expect "$1" "$2" -- "$lathe" eval --model m --tokens "$fixture/tokens.npy"
}
model_case "num_hidden_layers = 2.5" "num_hidden_layers' must be a whole number" "cfg('num_hidden_layers', 2.5)"
model_case "max_position_embeddings = -5" "max_position_embeddings must be positive" "cfg('max_position_embeddings', -5)"
model_case "rope_theta = 0" "rope_theta must be greater than 1" "cfg('rope_theta', 0)"
model_case "safetensors dtype 7" "dtype 7 is not a string" "st_header(lambda h: h['lm_head.weight'].update(dtype=7))"
model_case "safetensors shape as object" "is not a list of extents" "st_header(lambda h: h['lm_head.weight'].update(shape={'a': 1}))"
model_case "index weight_map value not a string" "is 5, not a shard" "import os; os.rename('m/model.safetensors', 'm/shard.safetensors'); json.dump({'weight_map': {'lm_head.weight': 5}}, open('m/model.safetensors.index.json', 'w'))"

# --- plugins ---
mkdir -p plugins && printf 'not a library' > plugins/lathe_bogus.so
expect "a plugin file that is not a library" "not a shared library" -- env LATHE_PLUGIN_PATH="$work/plugins" "$lathe" train "${quick[@]}" --set checkpoint.dir=plug --set backend.name=bogus

echo "$cases checks, $failed failed"
[ "$failed" -eq 0 ]
