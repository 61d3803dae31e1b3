#!/usr/bin/env bash
# `lathe eval` end to end on a transformers fixture: the printed loss, the logits file and the
# gradients file agree with the reference; bad token ids give a clear error and exit code 1.
set -euo pipefail
lathe="$1"; fixtures="$2"; out="$(mktemp -d)"; trap 'rm -rf "$out"' EXIT
case_dir="$fixtures/llama/gqa_untied_llama3"
line=$("$lathe" eval --model "$case_dir" --tokens "$case_dir/tokens.npy" --logits-out "$out/logits.npy" --grads-out "$out/grads.safetensors")
echo "$line"
python3 - "$line" "$case_dir" "$out" <<'PY'
import json, struct, sys
line, case, out = sys.argv[1:4]
got = float(line.split("loss:")[1])
want = json.load(open(case + "/expected.json"))["loss"]
assert abs(got - want) <= 1e-5 * abs(want), (got, want)
def npy_floats(path):
    data = open(path, "rb").read()
    hlen = struct.unpack("<H", data[8:10])[0]
    return struct.unpack("<%df" % ((len(data) - 10 - hlen) // 4), data[10 + hlen:])
a, b = npy_floats(out + "/logits.npy"), npy_floats(case + "/logits.npy")
assert len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b)) < 1e-4
def st_names(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    return sorted(k for k in json.loads(data[8:8 + n]) if k != "__metadata__")
assert st_names(out + "/grads.safetensors") == st_names(case + "/grads.safetensors")
print("eval output matches the reference")
PY
# An id outside the vocabulary (96) must be refused with the file named.
python3 -c "
import struct
hdr = \"{'descr': '<i8', 'fortran_order': False, 'shape': (1, 3), }\".ljust(117) + '\n'
open('$out/bad.npy', 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode() + struct.pack('<3q', 1, 500, 2))"
if "$lathe" eval --model "$case_dir" --tokens "$out/bad.npy" 2> "$out/err"; then echo "accepted a bad token id"; exit 1; fi
grep -q "bad.npy: token id 500 at position 1 is outside the vocabulary \[0, 96)" "$out/err" || { cat "$out/err"; exit 1; }
if "$lathe" eval --model "$out/nowhere" --tokens "$out/bad.npy" 2> "$out/err"; then exit 1; fi
grep -q "does not exist" "$out/err" || { cat "$out/err"; exit 1; }
echo "bad input refused"
