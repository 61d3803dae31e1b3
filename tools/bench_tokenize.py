"""`lathe tokenize` beside Hugging Face `tokenizers` and tiktoken on the same documents, with Meta's
Llama 3 tokenizer file (scripts/fetch_llama3_tokenizer.sh). The corpus: tinyshakespeare's paragraphs
and the multilingual fixture's lines, REPEAT times over, as one jsonl file. lathe's time includes
reading the jsonl and writing the Megatron files; the libraries encode documents already in memory
(tokenizers' encode_batch, tiktoken's encode_ordinary_batch, each on all cores). The token files must
hold the same ids as both libraries (an end-of-text token after each document).
Usage: bench_tokenize.py LATHE TOKENIZER_MODEL TINYSHAKESPEARE [REPEAT=10 [RUNS=2]]
       (pip install tiktoken tokenizers transformers)"""
import json, os, subprocess, sys, tempfile, time
from array import array
import tiktoken, tokenizers
from tiktoken.load import load_tiktoken_bpe
from transformers.convert_slow_tokenizer import TikTokenConverter

lathe, model, shakespeare = sys.argv[1:4]
repeat = int(sys.argv[4]) if len(sys.argv) > 4 else 10
runs = int(sys.argv[5]) if len(sys.argv) > 5 else 2
here = os.path.dirname(os.path.abspath(__file__))
PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
END_OF_TEXT = 128001

docs = [p for p in open(shakespeare, encoding="utf-8").read().split("\n\n") if p]
docs += [l for l in open(os.path.join(here, "../tests/fixtures/tokenizer/multilingual.txt"), encoding="utf-8", newline="").read().split("\n") if l]
docs = docs * repeat
work = tempfile.mkdtemp()
corpus = os.path.join(work, "corpus.jsonl")
with open(corpus, "w", encoding="utf-8") as f:
    for d in docs: f.write(json.dumps({"text": d}) + "\n")
megabytes = sum(len(d.encode("utf-8")) for d in docs) / 1e6
print("corpus: %d documents, %.2f MB of text" % (len(docs), megabytes))

ranks = load_tiktoken_bpe(model)
tt = tiktoken.Encoding("llama3", pat_str=PATTERN, mergeable_ranks=ranks, special_tokens={"<|end_of_text|>": END_OF_TEXT})
hf = TikTokenConverter(vocab_file=model, pattern=PATTERN).converted()

def flat(lists):
    out = []
    for ids in lists: out.extend(ids); out.append(END_OF_TEXT)
    return out

for run in range(runs):
    t = time.perf_counter()
    subprocess.run([lathe, "tokenize", "--tokenizer", model, "--input", corpus, "--output", os.path.join(work, "out"),
                    "--format", "megatron", "--threads", str(os.cpu_count())], check=True, capture_output=True)
    lathe_s = time.perf_counter() - t
    t = time.perf_counter()
    hf_ids = [e.ids for e in hf.encode_batch(docs, add_special_tokens=False)]
    hf_s = time.perf_counter() - t
    t = time.perf_counter()
    tt_ids = tt.encode_ordinary_batch(docs, num_threads=os.cpu_count())
    tt_s = time.perf_counter() - t
    got = array("i", open(os.path.join(work, "out.bin"), "rb").read()).tolist()
    want = flat(hf_ids)
    assert got == want, "lathe's tokens differ from tokenizers'"
    assert flat(tt_ids) == want, "tiktoken's tokens differ from tokenizers'"
    print(json.dumps({"run": run, "tokens": len(got), "lathe_MBps": round(megabytes / lathe_s, 2),
                      "tokenizers_MBps": round(megabytes / hf_s, 2), "tiktoken_MBps": round(megabytes / tt_s, 2)}))
print("tokenizers %s, tiktoken %s; the same ids from all three" % (tokenizers.__version__, tiktoken.__version__))
