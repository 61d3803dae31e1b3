#!/usr/bin/env bash
# Data parallel training under mpirun, on the cpu backend, two ranks:
#  1. two ranks log the same losses, step for step, as one process with the same train.grad_accum
#     (1e-6 relative), with and without a sharded optimizer; two runs of two ranks are bit-identical;
#     the same on the opencl backend where it is usable; bfloat16 gradients, summed as
#     bfloat16, agree to 2e-2;
#  2. ranks given different configs refuse to start, naming the key;
#  3. SIGKILL of one rank stops the other with a message naming its step, and the run resumed
#     after it logs what an uninterrupted run logs, step for step;
#  4. a sharded run resumes on one process (moments found by name across the ranks' files), and
#     one process's run resumes on two ranks.
set -euo pipefail
lathe="$1"; work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$work"
# Root in containers (CI) needs these; shared memory without the single-copy mechanism, which
# containers often forbid.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_btl_vader_single_copy_mechanism=none
export LATHE_CPU_THREADS=1  # one thread per rank on a two-core machine
mpi=(mpirun --oversubscribe -np 2)
small=(--set model.hidden_size=32 --set model.intermediate_size=64 --set model.num_heads=2 --set model.num_kv_heads=1
       --set model.num_layers=2 --set data.synthetic_vocab=16 --set train.batch_size=4 --set train.seq_len=16
       --set train.grad_accum=2 --set train.steps=30 --set eval.every=10 --set eval.batches=3 --set checkpoint.every=5
       --set checkpoint.keep=3 --set log.every=1 --set log.plot=false --set checkpoint.export_hf=false)
compare() {  # compare A B TOLERANCE: losses, gradient norms and validation losses
  python3 - "$@" <<'PY'
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:3])
tol = float(sys.argv[3])
assert len(a) == len(b) and len(a) > 0, f"{len(a)} against {len(b)} steps"
worst = 0.0
for x, y in zip(a, b):
    assert x["step"] == y["step"], (x["step"], y["step"])
    for k in ("loss", "grad_norm", "val_loss"):
        if k in x or k in y:
            d = abs(x[k] - y[k]) / max(abs(x[k]), 1e-30)
            if d > tol: sys.exit(f"step {x['step']}: {k} {x[k]!r} against {y[k]!r} (relative {d:.3g} > {tol})")
            worst = max(worst, d)
print(f"{len(a)} steps, largest relative difference {worst:.3g}")
PY
}

"$lathe" train "${small[@]}" --set checkpoint.dir=one > one.out 2>&1
cp -r one one_then_two  # resumed below by two ranks
"${mpi[@]}" "$lathe" train "${small[@]}" --set checkpoint.dir=two > two.out 2>&1
grep -q "data parallel: 2 MPI ranks" two.out || { cat two.out; echo "the run did not use two ranks"; exit 1; }
echo -n "two ranks against one process with grad_accum = 2: "; compare one/metrics.jsonl two/metrics.jsonl 1e-6
"${mpi[@]}" "$lathe" train "${small[@]}" --set checkpoint.dir=two_again > two_again.out 2>&1
echo -n "two runs of two ranks: "; compare two/metrics.jsonl two_again/metrics.jsonl 0
cmp two/checkpoints/step_00000030/model.safetensors two_again/checkpoints/step_00000030/model.safetensors
"${mpi[@]}" "$lathe" train "${small[@]}" --set checkpoint.dir=sharded --set distributed.shard_optimizer=true > sharded.out 2>&1
grep -q "optimizer state sharded" sharded.out || { cat sharded.out; exit 1; }
ls sharded/checkpoints/step_00000030/optimizer.rank00001-of-00002.safetensors > /dev/null
echo -n "two ranks with the optimizer sharded against one process: "; compare one/metrics.jsonl sharded/metrics.jsonl 1e-6

# The same through the opencl backend (PoCL in CI; both ranks share its one device).
if "$lathe" backends 2>/dev/null | grep -q "^opencl *usable"; then
  "$lathe" train "${small[@]}" --set backend.name=opencl --set train.steps=10 --set checkpoint.dir=one_cl > one_cl.out 2>&1
  "${mpi[@]}" "$lathe" train "${small[@]}" --set backend.name=opencl --set train.steps=10 --set checkpoint.dir=two_cl > two_cl.out 2>&1
  echo -n "opencl: two ranks against one process: "; compare one_cl/metrics.jsonl two_cl/metrics.jsonl 1e-6
fi

# bfloat16 gradients are summed as bfloat16: each rank's is rounded before the sum, where one
# process rounds the float32 sum of both micro-batches once, so the runs agree only roughly.
"$lathe" train "${small[@]}" --set checkpoint.dir=one_bf16 --set train.grad_dtype=bf16 > one_bf16.out 2>&1
"${mpi[@]}" "$lathe" train "${small[@]}" --set checkpoint.dir=two_bf16 --set train.grad_dtype=bf16 > two_bf16.out 2>&1
echo -n "bfloat16 gradients, two ranks against one process: "; compare one_bf16/metrics.jsonl two_bf16/metrics.jsonl 2e-2

# Different configs: refused before anything is written, naming the key.
if mpirun --oversubscribe -np 1 "$lathe" train "${small[@]}" --set checkpoint.dir=mixed : \
   -np 1 "$lathe" train "${small[@]}" --set checkpoint.dir=mixed --set optimizer.lr=0.001 > mixed.out 2>&1; then
  echo "ranks with different configs trained"; exit 1
fi
grep -q "rank 1 was given another config than rank 0: optimizer.lr = 0.001 here, 0.003 on rank 0" mixed.out || { cat mixed.out; exit 1; }
[ ! -e mixed ] || { echo "a refused run wrote its folder"; exit 1; }
echo "different configs refused: $(grep -o 'rank 1 was given[^:]*: optimizer.lr[^,]*' mixed.out)"

# SIGKILL of rank 1 mid-run; its partner must stop and say so. Then the same command again.
long=("${small[@]}" --set train.steps=3000 --set checkpoint.every=10 --set log.every=100)
"$lathe" train "${long[@]}" --set checkpoint.dir=long_ref > long_ref.out 2>&1
"${mpi[@]}" "$lathe" train "${long[@]}" --set checkpoint.dir=cut > cut1.out 2>&1 &
launcher=$!
deadline=$((SECONDS + 120))
until [ "$(cat cut/metrics.jsonl 2>/dev/null | wc -l)" -ge 50 ] || [ $SECONDS -ge $deadline ]; do sleep 0.01; done
# The ranks of this run, by their command line (no pgrep: procps is not on every machine).
ranks_of_cut() {
  for d in /proc/[0-9]*; do
    tr '\0' ' ' < "$d/cmdline" 2>/dev/null | grep -q "lathe train.*checkpoint.dir=cut " && echo "${d#/proc/}"
  done
  return 0
}
rank1=""
for p in $(ranks_of_cut); do
  if tr '\0' '\n' < /proc/$p/environ 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1"; then rank1=$p; fi
done
[ -n "$rank1" ] || { cat cut1.out; echo "rank 1 not found"; exit 1; }
kill -9 "$rank1"
if wait "$launcher"; then echo "mpirun succeeded although a rank was killed"; exit 1; fi
killed_at=$(wc -l < cut/metrics.jsonl)
[ "$killed_at" -lt 3000 ] || { echo "the run finished before it could be killed"; exit 1; }
grep -q "rank 0 stopped by the launcher during step\|exited on signal 9" cut1.out || { cat cut1.out; echo "no message on the kill"; exit 1; }
[ -z "$(ranks_of_cut)" ] || { echo "a rank outlived the killed one"; exit 1; }
"${mpi[@]}" "$lathe" train "${long[@]}" --set checkpoint.dir=cut > cut2.out 2>&1
grep -q "resuming from the checkpoint at step" cut2.out || { cat cut2.out; exit 1; }
echo -n "rank 1 killed after step $killed_at ($(grep -o 'rank 0 stopped by the launcher during step [0-9]*' cut1.out || echo 'the launcher reported it')); resumed against one process: "
compare long_ref/metrics.jsonl cut/metrics.jsonl 1e-6

# A sharded run's checkpoint resumes in one process: every moment is found by name.
"$lathe" train "${small[@]}" --set checkpoint.dir=sharded --set train.steps=35 > sharded_one.out 2>&1
grep -q "resuming from the checkpoint at step 30" sharded_one.out || { cat sharded_one.out; exit 1; }
"$lathe" train "${small[@]}" --set checkpoint.dir=one --set train.steps=35 > one_more.out 2>&1
echo -n "a sharded checkpoint resumed by one process, against one process throughout: "; compare one/metrics.jsonl sharded/metrics.jsonl 1e-6

# And the other way: one process's checkpoint resumed by two ranks (the sample stream and the
# global batch do not depend on N).
"${mpi[@]}" "$lathe" train "${small[@]}" --set checkpoint.dir=one_then_two --set train.steps=35 > one_then_two.out 2>&1
grep -q "resuming from the checkpoint at step 30" one_then_two.out || { cat one_then_two.out; exit 1; }
echo -n "one process's checkpoint resumed by two ranks, against one process throughout: "; compare one/metrics.jsonl one_then_two/metrics.jsonl 1e-6
