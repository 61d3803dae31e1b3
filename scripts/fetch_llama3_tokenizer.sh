#!/usr/bin/env bash
# Fetches Meta's Llama 3 tokenizer file (tiktoken ranks, 128,000 lines) from Meta's own
# `llama-models` package on PyPI and checks it byte for byte; the tests compare lathe's encodings
# with it against tiktoken's and tokenizers'. The file is under Meta's Llama 3 license, so it is
# fetched rather than kept in the repository.
#   scripts/fetch_llama3_tokenizer.sh [DEST]    default DEST: build/llama3/tokenizer.model
# Exits 0 with a note when there is no pip or no network: the tests that need the file then skip.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-build/llama3/tokenizer.model}"
want=82e9d31979e92ab929cd544440f129d9ecd797b69e327f80f17e1c50d5551b55
if [ -f "$dest" ] && [ "$(sha256sum "$dest" | cut -d' ' -f1)" = "$want" ]; then exit 0; fi
python=$(command -v python3 || true)
if [ -z "$python" ] || ! "$python" -m pip --version > /dev/null 2>&1; then
  echo "fetch_llama3_tokenizer: no python3 with pip here; Meta's Llama 3 tokenizer tests will skip" >&2
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! "$python" -m pip download -q --no-deps --disable-pip-version-check llama-models==0.3.0 -d "$tmp" > "$tmp/log" 2>&1; then
  echo "fetch_llama3_tokenizer: could not download llama-models 0.3.0 from PyPI ($(tail -1 "$tmp/log")); the tests that need it will skip" >&2
  exit 0
fi
"$python" - "$tmp"/llama_models-0.3.0-*.whl "$tmp/tokenizer.model" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("llama_models/llama3/tokenizer.model"))
PY
got=$(sha256sum "$tmp/tokenizer.model" | cut -d' ' -f1)
if [ "$got" != "$want" ]; then
  echo "fetch_llama3_tokenizer: the file in llama-models 0.3.0 has sha256 $got, not $want; not used" >&2
  exit 1
fi
mkdir -p "$(dirname "$dest")"
mv "$tmp/tokenizer.model" "$dest"
echo "fetch_llama3_tokenizer: $dest (Meta's Llama 3 tokenizer, from llama-models 0.3.0 on PyPI)"
