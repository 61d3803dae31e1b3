#!/usr/bin/env bash
# Megatron indexed datasets end to end, against the layout Megatron-LM's _IndexWriter writes
# (restated below in Python: magic, version, dtype code, counts, int32 lengths, int64 pointers,
# int64 document indices):
#  1. `lathe tokenize --format megatron` writes what that layout describes, the same tokens as
#     `--format bin`, one sequence per document;
#  2. a dataset written in that layout by Python trains with data.path = PREFIX.idx;
#  3. a truncated .idx stops the run with a message naming the file.
set -euo pipefail
lathe="$1"; fixtures="$2/tokenizer"; work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$work"
python3 -c "
import json, gzip, sys
lines = open(sys.argv[1], encoding='utf-8').read().split('\n')
with gzip.open('docs.jsonl.gz', 'wt', encoding='utf-8') as f:
    for i in range(0, len(lines), 7): f.write(json.dumps({'text': '\n'.join(lines[i:i + 7])}) + '\n')
" "$fixtures/multilingual.txt"
"$lathe" tokenize --tokenizer "$fixtures/bpe_llama3_pattern.json" --input docs.jsonl.gz --output meg --format megatron --threads 2 > /dev/null
"$lathe" tokenize --tokenizer "$fixtures/bpe_llama3_pattern.json" --input docs.jsonl.gz --output flat --format bin --threads 1 > /dev/null
python3 - <<'PY'
import struct, gzip
from array import array
idx = open("meg.idx", "rb").read()
assert idx[:9] == b"MMIDIDX\x00\x00", idx[:9]
version, code, count, ndoc = struct.unpack_from("<QBQQ", idx, 9)
assert version == 1 and code == 8, (version, code)  # uint16
at = 9 + 8 + 1 + 8 + 8
lengths = struct.unpack_from("<%di" % count, idx, at); at += 4 * count
pointers = struct.unpack_from("<%dq" % count, idx, at); at += 8 * count
docs = struct.unpack_from("<%dq" % ndoc, idx, at); at += 8 * ndoc
assert at == len(idx), (at, len(idx))
n_docs = sum(1 for _ in gzip.open("docs.jsonl.gz", "rt"))
assert count == n_docs and list(docs) == list(range(n_docs + 1)), (count, n_docs)
tokens = array("H", open("meg.bin", "rb").read())
offset = 0
for n, p in zip(lengths, pointers):
    assert p == offset, (p, offset)
    offset += 2 * n
assert sum(lengths) == len(tokens)
flat = array("H", open("flat.bin", "rb").read()[1024:])
assert flat == tokens, "megatron and bin outputs hold different tokens"
# Python writes a dataset in the same layout: 3 documents of uint16 tokens.
docs = [[i % 50 for i in range(1, 300)], [7] * 120, [i % 50 for i in range(400)]]
with open("py.bin", "wb") as b:
    for d in docs: b.write(array("H", d).tobytes())
lens = [len(d) for d in docs]
ptrs = [0, 2 * lens[0], 2 * (lens[0] + lens[1])]
with open("py.idx", "wb") as f:
    f.write(b"MMIDIDX\x00\x00" + struct.pack("<QBQQ", 1, 8, 3, 4))
    f.write(struct.pack("<3i", *lens) + struct.pack("<3q", *ptrs) + struct.pack("<4q", 0, 1, 2, 3))
# A validation set of its own (data.val_path): 2 documents of tokens 50 and up.
vdocs = [[50 + i % 9 for i in range(90)], [59] * 60]
with open("pyval.bin", "wb") as b:
    for d in vdocs: b.write(array("H", d).tobytes())
with open("pyval.idx", "wb") as f:
    f.write(b"MMIDIDX\x00\x00" + struct.pack("<QBQQ", 1, 8, 2, 3))
    f.write(struct.pack("<2i", 90, 60) + struct.pack("<2q", 0, 180) + struct.pack("<3q", 0, 1, 2))
print("lathe's Megatron files follow the layout: %d documents, %d tokens, the same tokens as --format bin" % (count, len(tokens)))
PY
small=(--set model.hidden_size=32 --set model.intermediate_size=64 --set model.num_heads=2 --set model.num_kv_heads=1
       --set model.num_layers=1 --set train.batch_size=2 --set train.seq_len=16 --set train.steps=2 --set eval.batches=1
       --set log.plot=false --set checkpoint.every=-1 --set checkpoint.export_hf=false --set data.source=file)
"$lathe" train "${small[@]}" --set data.path=py.idx --set data.val_fraction=0.34 --set checkpoint.dir=run > run.out 2>&1 || { cat run.out; exit 1; }
grep -q "py (Megatron, 3 documents, 819 tokens; " run.out || { cat run.out; echo "the Python-written dataset was not read as such"; exit 1; }
head -c 40 py.idx > cut.idx && cp py.bin cut.bin
if "$lathe" train "${small[@]}" --set data.path=cut --set data.format=megatron --set checkpoint.dir=cut > cut.out 2>&1; then
  echo "a truncated .idx was accepted"; exit 1
fi
grep -q "cut.idx: truncated" cut.out || { cat cut.out; exit 1; }
# Three documents split 0.9 / 0.1 leave none for validation (as in Megatron): said before any step.
if "$lathe" train "${small[@]}" --set data.path=py.idx --set checkpoint.dir=noval > noval.out 2>&1; then
  echo "a run without validation documents started"; exit 1
fi
grep -q "leaves none of its 3 documents for validation" noval.out || { cat noval.out; exit 1; }
# All three documents train (no validation split is needed then), the other file validates; the
# model's vocabulary covers both files' tokens.
"$lathe" train "${small[@]}" --set data.path=py.idx --set data.val_path=pyval.idx --set checkpoint.dir=val > val.out 2>&1 || { cat val.out; exit 1; }
grep -q "; validation: pyval (Megatron, 2 documents, 150 tokens; " val.out || { cat val.out; echo "data.val_path was not read"; exit 1; }
grep -q "vocab 60" val.out || { cat val.out; echo "the vocabulary does not cover the validation file"; exit 1; }
if "$lathe" train "${small[@]}" --set data.source=synthetic --set data.val_path=pyval.idx --set checkpoint.dir=synval > synval.out 2>&1; then
  echo "data.val_path with the synthetic task was accepted"; exit 1
fi
grep -q "data.val_path is set but data.source" synval.out || { cat synval.out; exit 1; }
echo "a Python-written Megatron dataset trains; a truncated index and an empty validation split are refused; data.val_path validates on a file of its own"
