#!/usr/bin/env bash
# Memory of a training step, end to end on a 4-layer model:
#  1. `lathe train --dry-run` predicts the first step's peak within 10% of the peak a real
#     first step reaches, and touches no run folder;
#  2. `train.recompute = true` logs the same losses as stored activations, with a lower peak.
# Usage: memory_cli_check.sh LATHE [BACKEND]
set -euo pipefail
lathe="$1"; backend="${2:-cpu}"; work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$work"
model=(--set backend.name="$backend" --set model.hidden_size=128 --set model.intermediate_size=384 --set model.num_heads=4
       --set model.num_kv_heads=2 --set model.num_layers=4 --set data.synthetic_vocab=64 --set train.batch_size=8
       --set train.seq_len=128 --set train.steps=3 --set eval.every=0 --set eval.batches=1 --set log.every=1
       --set log.plot=false --set checkpoint.every=-1 --set checkpoint.export_hf=false)
mib() { grep -oP "$1" "$2" | head -1; }
losses() { python3 -c "import json,sys; print('\n'.join('%d %r' % (j['step'], j['loss']) for j in map(json.loads, open(sys.argv[1]))))" "$1"; }
declare -A peak
for recompute in false true; do
  "$lathe" train "${model[@]}" --set train.recompute=$recompute --set checkpoint.dir=dry_$recompute --dry-run > dry_$recompute.out 2>&1 ||
    { cat dry_$recompute.out; exit 1; }
  [ ! -e dry_$recompute ] || { echo "--dry-run created the run folder"; exit 1; }
  "$lathe" train "${model[@]}" --set train.recompute=$recompute --set checkpoint.dir=run_$recompute > run_$recompute.out 2>&1 ||
    { cat run_$recompute.out; exit 1; }
  predicted=$(mib 'peak of the step +[0-9.]+ GiB \(\K[0-9.]+' dry_$recompute.out)
  measured=$(mib '[0-9.]+(?= MiB at the peak of the first step)' run_$recompute.out)
  [ -n "$predicted" ] && [ -n "$measured" ] || { cat dry_$recompute.out run_$recompute.out; echo "no peak figures"; exit 1; }
  python3 -c "import sys; p, m = float(sys.argv[1]), float(sys.argv[2]); sys.exit(0 if abs(p - m) <= 0.1 * m else 1)" "$predicted" "$measured" ||
    { echo "recompute=$recompute: --dry-run predicted $predicted MiB, the first step peaked at $measured MiB"; exit 1; }
  echo "$backend, recompute=$recompute: --dry-run predicted $predicted MiB, the first step peaked at $measured MiB"
  peak[$recompute]=$measured
done
# Bit for bit on the cpu backend. Elsewhere the recomputed layer's kernels may be joined
# differently from the forward's (work-group joins), which reorders float sums: 1e-5 relative.
python3 - run_false/metrics.jsonl run_true/metrics.jsonl "$backend" <<'PY' || { echo "recomputed activations changed the losses"; exit 1; }
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:3])
tol = 0 if sys.argv[3] == "cpu" else 1e-5
bad = [(i + 1, x, y) for i, (x, y) in enumerate(zip(a, b)) if abs(x - y) > tol * abs(x)]
for t in bad: print("step %d: %r stored, %r recomputed" % t)
sys.exit(1 if bad or len(a) != len(b) else 0)
PY
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 0.75 * float(sys.argv[2]) else 1)" "${peak[true]}" "${peak[false]}" ||
  { echo "recompute peaked at ${peak[true]} MiB against ${peak[false]} MiB stored"; exit 1; }
echo "$backend: train.recompute logs the same losses with a peak of ${peak[true]} MiB against ${peak[false]} MiB"
