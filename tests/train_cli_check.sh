#!/usr/bin/env bash
# `lathe train` end to end on a tiny model:
#  0. a captured (replayed) step computes what building the step every time computes;
#  1. resume is exact: a run killed with SIGKILL mid-training and restarted logs the same
#     losses, step for step, as an uninterrupted run (bit-identical on the cpu backend);
#  2. a checkpoint cut short on disk is never picked up, and a damaged one is skipped;
#  3. lathe generate takes the run's folder (its newest checkpoint), the checkpoint's folder or
#     the hf/ export, and continues a prompt the same way from each;
#  4. bad configs, a missing data file, an unknown backend and a diverging loss stop with a
#     clear message and leave existing checkpoints intact.
set -euo pipefail
lathe="$1"; work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$work"
small=(--set model.hidden_size=32 --set model.intermediate_size=64 --set model.num_heads=2 --set model.num_kv_heads=1
       --set model.num_layers=1 --set data.synthetic_vocab=16 --set train.batch_size=4 --set train.seq_len=16
       --set train.steps=40 --set eval.every=10 --set eval.batches=2 --set checkpoint.every=5 --set checkpoint.keep=3
       --set log.every=1 --set log.plot=false --set checkpoint.export_hf=false)
losses() { python3 -c "import json,sys; print('\n'.join('%d %r' % (j['step'], j['loss']) for j in map(json.loads, open(sys.argv[1]))))" "$1"; }

"$lathe" train "${small[@]}" --set checkpoint.dir=ref > ref.out 2>&1

# The steady steps replay a captured step; without capture every step is built and scheduled
# again. Both log the same losses, bit for bit.
grep -q "step captured" ref.out || { cat ref.out; echo "the training step was not captured"; exit 1; }
LATHE_CAPTURE=0 "$lathe" train "${small[@]}" --set checkpoint.dir=eager > eager.out 2>&1
diff <(losses ref/metrics.jsonl) <(losses eager/metrics.jsonl) || { echo "captured and uncaptured losses differ"; exit 1; }
echo "captured steps log the same losses as uncaptured ones"

"$lathe" train "${small[@]}" --set checkpoint.dir=gen --set train.steps=10 --set checkpoint.export_hf=true > gen.out 2>&1
gen() { "$lathe" generate --model "$1" --prompt-ids 1,2,3 --max-tokens 6 --print-ids 2> gen.err; }
from_run=$(gen gen); grep -q "the model of gen/checkpoints/step_00000010" gen.err || { cat gen.err; exit 1; }
from_step=$(gen gen/checkpoints/step_00000010); from_hf=$(gen gen/hf)
[ -n "$from_run" ] && [ "$from_run" = "$from_step" ] && [ "$from_run" = "$from_hf" ] || {
  echo "generate differs: run '$from_run', checkpoint '$from_step', hf '$from_hf'"; exit 1; }
if gen empty_dir_that_is_not_there; then echo "generate from a missing folder succeeded"; exit 1; fi
grep -q "give a Hugging Face model folder or a training run's folder" gen.err || { cat gen.err; exit 1; }
echo "lathe generate from the run folder, its newest checkpoint and its export: $from_run"

# Killed mid-run, then the same command again.
"$lathe" train "${small[@]}" --set checkpoint.dir=cut > cut1.out 2>&1 &
pid=$!
# Steps take milliseconds: wait in a tight loop for the third checkpoint, then kill.
deadline=$((SECONDS + 60))
until [ -d cut/checkpoints/step_00000015 ] || [ $SECONDS -ge $deadline ]; do :; done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
killed_at=$(wc -l < cut/metrics.jsonl)
[ "$killed_at" -lt 40 ] || { echo "the run finished before it could be killed"; exit 1; }
"$lathe" train "${small[@]}" --set checkpoint.dir=cut > cut2.out 2>&1
grep -q "resuming from the checkpoint at step" cut2.out || { cat cut2.out; exit 1; }
diff <(losses ref/metrics.jsonl) <(losses cut/metrics.jsonl) || { echo "resumed losses differ"; exit 1; }
echo "killed after $killed_at steps; the resumed run matches the uninterrupted one at every step"

# A checkpoint cut short (no completion marker, or a temporary folder) is ignored; a damaged
# complete one is skipped for the previous.
mkdir -p cut/checkpoints/step_00000099 cut/checkpoints/step_00000098.tmp
echo '{"step": 99}' > cut/checkpoints/step_00000099/state.json
newest=$(ls -d cut/checkpoints/step_* | grep -v '\.tmp' | grep -v 99 | tail -n 1)
truncate -s 100 "$newest/model.safetensors"
"$lathe" train "${small[@]}" --set checkpoint.dir=cut --set train.steps=41 > cut3.out 2>&1
grep -q "cannot be used" cut3.out || { cat cut3.out; exit 1; }
grep -q "resuming from the checkpoint at step 35" cut3.out || { cat cut3.out; exit 1; }
echo "cut-short and damaged checkpoints were skipped"

# bf16 compute from float32 master weights follows the float32 run closely.
"$lathe" train "${small[@]}" --set checkpoint.dir=bf16 --set train.precision=bf16 > bf16.out 2>&1
python3 - ref/metrics.jsonl bf16/metrics.jsonl <<'PY'
import json, math, sys
a, b = ([json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:3])
worst = max(abs(x - y) for x, y in zip(a, b))
assert len(a) == len(b) == 40 and all(map(math.isfinite, b)) and worst < 0.1, worst
print("bf16: largest loss difference to float32 over 40 steps %.4f" % worst)
PY

expect_error() {  # expect_error PATTERN ARGS...
  local pattern="$1"; shift
  if "$lathe" train "$@" > err.out 2>&1; then echo "accepted: $*"; exit 1; fi
  grep -q -- "$pattern" err.out || { echo "missing '$pattern' in:"; cat err.out; exit 1; }
}
expect_error "unknown key train.stepz (did you mean train.steps?)" --set train.stepz=3
expect_error "train.steps must be an integer" --set train.steps=\"many\"
expect_error "optimizer.lr = 50.0 is out of range" --set optimizer.lr=50.0
expect_error "data file /nonexistent.txt is missing" --set data.source=file --set data.path=/nonexistent.txt
expect_error "no backend named 'warp9' (found: " --set backend.name=warp9
printf '[train]\nsteps = 1\n[trian]\nbatch_size = 2\n' > typo.toml
expect_error "unknown key trian.batch_size (did you mean train.batch_size?)" typo.toml
expect_error "stopped without writing a checkpoint" "${small[@]}" --set checkpoint.dir=diverged --set train.steps=400 --set optimizer.name=sgd \
  --set optimizer.lr=10.0 --set optimizer.grad_clip=0.0 --set schedule.warmup_steps=0 --set schedule.min_lr=10.0 --set model.init_std=3.0
grep -q "stopped without writing a checkpoint" err.out || { cat err.out; exit 1; }
for d in diverged/checkpoints/*; do  # whatever was written before the divergence is complete
  [ -e "$d" ] || continue
  case "$d" in *.tmp) echo "left a partial checkpoint $d"; exit 1;; esac
  [ -f "$d/.complete" ] || { echo "$d is incomplete"; exit 1; }
done
expect_error "the batch does not fit in device memory" "${small[@]}" --set checkpoint.dir=oom --set train.batch_size=64 \
  --set train.seq_len=256 --set "backend.options={ memory_limit_mib = 24 }"
expect_error "backend.options must be an inline table" --set backend.options=3
echo "bad input refused with clear messages"
