#!/usr/bin/env bash
# `lathe tokenize` end to end: --text prints the ids the reference library gave for the same
# text (the first ids of the fixture's multilingual corpus), --decode gives the text back, and a
# file that is not a tokenizer is refused with its name.
set -euo pipefail
lathe="$1"; fixtures="$2/tokenizer"
text=$(python3 -c "import sys; t = open(sys.argv[1], encoding='utf-8').read(); print(t[:t.index(chr(10))], end='')" "$fixtures/multilingual.txt")
ids=$("$lathe" tokenize --tokenizer "$fixtures/bpe_llama3_pattern.json" --text "$text")
python3 - "$fixtures/expected.json" "$ids" <<'PY'
import json, sys
want = json.load(open(sys.argv[1]))["encodings"]["multilingual"]["bpe_llama3_pattern.json"]["first"]
got = [int(x) for x in sys.argv[2].split()]
n = min(len(got), len(want)) - 1  # the last id of a prefix may merge differently with what follows
assert n > 8 and got[:n] == want[:n], (got[:n], want[:n])
PY
back=$("$lathe" tokenize --tokenizer "$fixtures/bpe_llama3_pattern.json" --decode "$ids")
[ "$back" = "$text" ] || { echo "decode(encode(x)) != x: '$back' against '$text'"; exit 1; }
if "$lathe" tokenize --tokenizer "$fixtures/multilingual.txt" --text hi > out.txt 2> err.txt; then echo "a text file was taken for a tokenizer"; exit 1; fi
grep -q "multilingual.txt: line 1" err.txt || { cat err.txt; exit 1; }
echo "lathe tokenize: the reference's ids for the first line, its text back from --decode, and a bad file refused"
