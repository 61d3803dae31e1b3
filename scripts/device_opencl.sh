#!/usr/bin/env bash
# Runs on the device machine (NVIDIA H100, Ubuntu 24.04, no network), with .device/ carried:
#   scripts/device_opencl.sh build        unpack the carried packages, build into build-device/
#   scripts/device_opencl.sh conformance  every conformance suite on NVIDIA's OpenCL platform
#   scripts/device_opencl.sh bench        kernels (matmul, elementwise, softmax, attention) and a gpu-preset
#                                         training step, beside PyTorch in the same run
#   scripts/device_opencl.sh longattn     causal attention 1x8x4096x64 with recomputed scores, and its kernels
#                                         (with LATHE_SEARCH=N set: what the search found for them)
#   scripts/device_opencl.sh hoststep     host time of a replayed gpu-preset step, by how buffers are allocated
#   scripts/device_opencl.sh search       the matmul benchmark with LATHE_SEARCH=2
#   scripts/device_opencl.sh mlperf SECS [cold|warm] [notorch]
#                                         the `gpu` mini-MLPerf preset on opencl (cold: empty kernel
#                                         cache first), then PyTorch's reference
#   scripts/device_opencl.sh profile [PRESET SEQ BATCH PRECISION]
#                                         kernel times of one step of the `gpu` preset (or of a real-size
#                                         Llama on synthetic tokens), largest first
#   scripts/device_opencl.sh summary      a short table of whatever of the above ran (from $OUT)
#   scripts/device_opencl.sh mma          the matrix-unit tests on NVIDIA's platform, and bf16 matmuls beside PyTorch
#   scripts/device_opencl.sh llama PRESET SEQ BATCH PRECISION STEPS SECS [torch]
#                                         a real-size Llama on opencl (synthetic tokens), then PyTorch's (ref_llama_scale.py);
#                                         LLAMA_SETS="--set train.recompute=true" adds keys
#   scripts/device_opencl.sh dp N PRESET SEQ BATCH PRECISION STEPS SECS
#                                         mpirun -np N (one GPU per rank) against one GPU with N micro-batches
#   scripts/device_opencl.sh exec CMD...  any command with the environment above (lathe=$build/bin)
#   scripts/device_opencl.sh all SECS     build, conformance, bench, mlperf cold then warm, summary
# DEVICE_SRC=dir DEVICE_BUILD=build-x run any of these on another source tree (an older commit
# unpacked under .device/, say) built into build-x, for before/after figures in one call.
# Results are printed and, when $OUT is set, written there.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build="$root/${DEVICE_BUILD:-build-device}"
src="$root/${DEVICE_SRC:-.}"
prefix="$root/build-device/prefix"  # build outputs stay on the device between calls; .device is re-carried
out="${OUT:-$root/.device/out}"
mkdir -p "$out" "$root/.device/icd" "$prefix"
echo /usr/local/nvidia/lib64/libnvidia-opencl.so.1 > "$root/.device/icd/nvidia.icd"
export OCL_ICD_VENDORS="$root/.device/icd"  # NVIDIA only; PoCL stays out of the way
export LD_LIBRARY_PATH="$prefix/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
export LATHE_CACHE_DIR="$build/cache"
lathe="$build/bin/lathe"

case "${1:-}" in
  build)
    mkdir -p "$prefix"
    for f in .device/debs/*.deb; do dpkg -x "$f" "$prefix"; done
    # The prefix holds -dev packages without their runtimes (the machine's own libz and libpcre2 are used):
    # no pkg-config, whose .pc files there name /usr, and the runtimes named directly.
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix/usr" -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON \
      -DZLIB_LIBRARY="$(ls /usr/lib/x86_64-linux-gnu/libz.so.1)" -DZLIB_INCLUDE_DIR="$prefix/usr/include" \
      -DOpenCL_INCLUDE_DIR="$prefix/usr/include" -DOpenCL_LIBRARY="$prefix/usr/lib/x86_64-linux-gnu/libOpenCL.so.1" > "$out/cmake.txt" 2>&1 \
      || { tail -40 "$out/cmake.txt"; exit 1; }
    cmake --build "$build" -j "$(nproc)" > "$out/build.txt" 2>&1 || { grep -E "error|Error" "$out/build.txt" | head -30; exit 1; }
    "$lathe" backends | tee "$out/backends.txt"
    ;;
  conformance)
    "$build/bin/lathe_tests" --gtest_filter='*opencl*:OpenCL.*' > "$out/conformance.txt" 2>&1 || true
    grep -E "^\[  (PASSED|FAILED) |tests ran|FAILED  \]" "$out/conformance.txt" | tee "$out/conformance_summary.txt"
    ;;
  bench)
    # Kernels and the gpu preset's training step, PyTorch (CUDA) measured in the same run.
    "$lathe" bench --backend opencl --sizes 1024,4096 --repeat 5 --elementwise-mi 256 --presets gpu --python python3 \
      --attention 16x6x256x64,1x8x4096x64 \
      --torch-device cuda --torch-ref "$root/.device/ref_shakespeare.py" --torch-ref-data "$root/.device/tinyshakespeare.txt" \
      2>&1 | grep -v Warning | tee "$out/bench_lathe.txt"
    ;;
  longattn)
    # Causal attention 1x8x4096x64 with its scores recomputed (not stored), beside PyTorch,
    # then the same with every kernel timed (LATHE_DEBUG=1), slowest kernels first.
    LATHE_RECOMPUTE_MIB=256 "$lathe" bench --backend opencl --sizes 256 --repeat 3 --elementwise-mi 1 --presets none --python python3 \
      --attention 1x8x4096x64 --torch-device cuda 2>&1 | grep -E "attention|search " | tee "$out/longattn.txt"
    LATHE_DEBUG=1 LATHE_RECOMPUTE_MIB=256 "$lathe" bench --backend opencl --sizes 256 --repeat 1 --elementwise-mi 1 --presets none \
      --python none --attention 1x8x4096x64 2>&1 | grep -oP "opencl:0 \K.*" | awk '{print $6, "ms", $1}' | sort -rn | head -15 | tee -a "$out/longattn.txt"
    ;;
  hoststep)
    # Host time of a replayed gpu-preset step with each buffer an allocation of its own (slabs
    # 0), and with sub-buffers of slabs starting at 256 and 4096 MiB.
    for mib in 0 256 4096; do
      echo "LATHE_OPENCL_SLAB_MIB=$mib"
      LATHE_OPENCL_SLAB_MIB=$mib "$lathe" bench --backend opencl --sizes 16 --repeat 3 --elementwise-mi 1 --presets gpu --python none \
        --attention 1x1x64x64 2>&1 | grep -E "issue a launch|train step|issuing|host time" | tee -a "$out/hoststep.txt"
    done
    ;;
  search)
    # LATHE_SEARCH=2 on the matmul benchmark: the search's time and what it found.
    LATHE_SEARCH=2 "$lathe" bench --backend opencl --sizes 1024,4096 --repeat 5 --elementwise-mi 64 --presets "" --python none \
      2>&1 | grep -E "search:|matmul" | tee "$out/search.txt"
    ;;
  mlperf)
    secs="${2:-240}"
    [ "${3:-}" = "cold" ] && rm -rf "$LATHE_CACHE_DIR" ~/.nv/ComputeCache  # time to target including every compile (NVIDIA keeps a cache of its own)
    rm -rf "$build/run_gpu"  # a fresh run, not a resumed one
    timeout "$secs" "$lathe" train apps/configs/mini_mlperf_gpu.toml --set data.path="$root/.device/tinyshakespeare.txt" \
      --set checkpoint.dir="$build/run_gpu" --set log.every=25 --set log.plot=false 2>&1 | grep -v MLLOG > "$out/mlperf_lathe.txt" || true
    grep -E "first step|reached|step +(25|50|250|500)/|device memory" "$out/mlperf_lathe.txt" || true
    [ "${4:-}" = "notorch" ] && exit 0
    PRESET=gpu REF_OUT="$out" timeout 150 python3 .device/ref_shakespeare.py fp32 5000 .device/tinyshakespeare.txt 1.55 2>&1 | tail -8 | tee "$out/mlperf_torch.txt" || true
    ;;
  profile)
    # LATHE_DEBUG=1 times every kernel; the kernels between the step 1 and step 2 log lines
    # are step 2, compiled already (stdout line-buffered so both streams interleave in order).
    if [ -n "${2:-}" ]; then  # a real-size Llama: PRESET SEQ BATCH PRECISION
      rm -rf "$build/run_profile"
      LATHE_DEBUG=1 timeout 500 stdbuf -oL "$lathe" train --set model.preset="$2" --set data.source=synthetic --set data.synthetic_vocab=128256 \
        --set train.seq_len="$3" --set train.batch_size="$4" --set train.precision="$5" --set train.steps=3 --set backend.name=opencl \
        --set log.every=1 --set eval.every=0 --set eval.batches=1 --set checkpoint.export_hf=false --set log.plot=false \
        --set checkpoint.dir="$build/run_profile" > "$out/profile_raw.txt" 2>&1 || true
    else
      LATHE_DEBUG=1 timeout 300 stdbuf -oL "$lathe" train apps/configs/mini_mlperf_gpu.toml --set data.path="$root/.device/tinyshakespeare.txt" \
        --set checkpoint.dir="$build/run_profile" --set train.steps=5 --set log.every=1 --set eval.batches=1 \
        --set log.plot=false > "$out/profile_raw.txt" 2>&1 || true
    fi
    python3 - "$out/profile_raw.txt" <<'PY' | tee "$out/profile.txt"
import re, sys, collections
per, inside = collections.defaultdict(lambda: [0, 0.0]), False
for l in open(sys.argv[1]):
    if re.search(r"step +1/", l): inside = True
    elif re.search(r"step +2/", l): break
    m = re.search(r"\] (\S+)\s+(\S+)\s+\d+ buffers\s+global\s+\d+\s+([\d.]+) ms", l)
    if inside and m: per[m.group(2)][0] += 1; per[m.group(2)][1] += float(m.group(3))
total = sum(v[1] for v in per.values())
print("step 2: %d kernels, device time %.1f ms" % (sum(v[0] for v in per.values()), total))
for name, (n, ms) in sorted(per.items(), key=lambda kv: -kv[1][1])[:25]:
    print("%8.2f ms %5.1f%% %4dx %s" % (ms, 100 * ms / total, n, name))
for l in open(sys.argv[1]):
    if re.search(r"step \d+: wall|device memory", l): print(l.rstrip())
PY
    ;;
  summary)
    python3 - "$out" <<'PY'
import json, os, re, sys
out = sys.argv[1]
def read(name):
    p = os.path.join(out, name)
    return open(p).read() if os.path.exists(p) else ""
rows = []
m = re.search(r"PASSED  \] (\d+) tests", read("conformance_summary.txt"))
f = re.search(r"FAILED  \] (\d+) tests", read("conformance_summary.txt"))
if m or f: rows.append(("conformance (opencl)", "%s passed, %s failed" % (m.group(1) if m else 0, f.group(1) if f else 0), "", ""))
for l in read("bench_lathe.txt").splitlines():
    b = re.match(r"(\S.*?\S)\s{2,}([\d.]+) (\S+)\s+(.*)$", l)
    if not b or b.group(1).startswith("benchmark"): continue
    t = re.search(r"PyTorch[^(]*?([\d.]+) \(([\d.]+)x\)", b.group(4))
    rows.append((b.group(1), b.group(2) + " " + b.group(3), t.group(1) if t else "", t.group(2) + "x" if t else ""))
ref = json.loads(read("shakespeare_fp32.json") or "{}")
for label, name in (("cold", "cold/mlperf_lathe.txt"), ("warm", "mlperf_lathe.txt")):
    text = read(name)
    hit = re.search(r"validation loss ([\d.]+) reached the target [\d.]+ at step (\d+) after ([\d.]+) s", text)
    rates = [int(x) for x in re.findall(r"(\d+) tok/s", text)[1:]]
    if hit:
        rows.append(("gpu preset to target, " + label, "%s s (step %s, val %s)" % (hit.group(3), hit.group(2), hit.group(1)),
                     "%s s" % ref.get("seconds_to_target", "?"), "%.1fx slower" % (float(hit.group(3)) / ref["seconds_to_target"]) if ref else ""))
    elif text: rows.append(("gpu preset, " + label, "target not reached", "", ""))
    if rates and label == "warm":
        rows.append(("gpu preset tokens/s (median)", str(sorted(rates)[len(rates) // 2]), str(ref.get("train_tokens_per_s", "")),
                     "%.2fx" % (sorted(rates)[len(rates) // 2] / ref["train_tokens_per_s"]) if ref else ""))
print("| benchmark | lathe | PyTorch | ratio |\n| --- | --- | --- | --- |")
for r in rows: print("| %s | %s | %s | %s |" % r)
PY
    ;;
  mma)
    "$build/bin/lathe_tests" --gtest_filter='*MatrixUnit*:*opencl*Matmul*' 2>&1 | grep -E "^\[  (PASSED|FAILED|  OK) |Failure|rror" | tee "$out/mma_tests.txt"
    "$lathe" bench --backend opencl --sizes 4096 --bf16-sizes 4096,8192 --repeat 5 --elementwise-mi 64 --presets none --python python3 \
      --torch-device cuda --attention 1x1x64x64 2>&1 | grep -v Warning | tee "$out/mma_bench.txt"
    ;;
  llama)
    preset=$2 seq=$3 batch=$4 precision=$5 steps=$6 secs=$7
    rm -rf "$build/run_llama"
    timeout "$secs" "$lathe" train --set model.preset="$preset" --set data.source=synthetic --set data.synthetic_vocab=128256 \
      --set train.seq_len="$seq" --set train.batch_size="$batch" --set train.precision="$precision" --set train.steps="$steps" \
      --set backend.name=opencl --set log.every=1 --set eval.every=0 --set eval.batches=1 --set checkpoint.export_hf=false \
      --set checkpoint.every=-1 --set log.plot=false --set checkpoint.dir="$build/run_llama" ${LLAMA_SETS:-} 2>&1 | grep -v MLLOG | tee "$out/llama_${preset}_${seq}x${batch}_$precision.txt" | \
      grep -E "step +[0-9]+/|first step|memory|rror|dry run|parameters|held|peak|fit" || true
    if [ "${8:-}" = "torch" ]; then  # the same sizes in transformers (tools/bench_llama_torch.py: best of 3 steps after 3)
      common='"vocab_size":128256,"num_key_value_heads":8,"rope_theta":500000.0,"rms_norm_eps":1e-5'
      case "$preset" in
        llama3.2-1b) sizes="{$common,\"hidden_size\":2048,\"intermediate_size\":8192,\"num_hidden_layers\":16,\"num_attention_heads\":32,\"head_dim\":64,\"tie_word_embeddings\":true}" ;;
        llama3.1-8b) sizes="{$common,\"hidden_size\":4096,\"intermediate_size\":14336,\"num_hidden_layers\":32,\"num_attention_heads\":32,\"head_dim\":128,\"tie_word_embeddings\":false}" ;;
        *) echo "llama: no PyTorch sizes for $preset"; exit 2 ;;
      esac
      python3 tools/bench_llama_torch.py cuda 3 "$precision" "$seq" "$batch" "$sizes" 2>&1 | tail -1 | tee "$out/torch_${preset}_${seq}x${batch}_$precision.txt"
    fi
    ;;
  dp)
    # Data parallel on N GPUs of the host (one rank each), then the same step on one GPU with N
    # micro-batches: tokens/s per GPU and the losses of both. Needs mpirun on the machine and a
    # build that found MPI (the cmake log says "MPI not found" otherwise).
    ranks=$2 preset=$3 seq=$4 batch=$5 precision=$6 steps=$7 secs=$8
    command -v mpirun > /dev/null || { echo "dp: no mpirun on this machine"; exit 2; }
    grep -q "Found MPI" "$out/cmake.txt" 2>/dev/null || grep -q "MPI_C_FOUND:INTERNAL=TRUE\|MPI_C_WORKS" "$build/CMakeCache.txt" || {
      echo "dp: the build found no MPI"; exit 2; }
    args=(--set model.preset="$preset" --set data.source=synthetic --set data.synthetic_vocab=128256 --set train.seq_len="$seq"
      --set train.batch_size="$batch" --set train.precision="$precision" --set train.steps="$steps" --set train.grad_accum="$ranks"
      --set backend.name=opencl --set log.every=1 --set eval.every=0 --set eval.batches="$ranks" --set checkpoint.export_hf=false
      --set checkpoint.every=-1 --set log.plot=false ${LLAMA_SETS:-})
    rm -rf "$build/run_dp" "$build/run_dp1"
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout "$secs" mpirun --oversubscribe -np "$ranks" "$lathe" train "${args[@]}" \
      --set checkpoint.dir="$build/run_dp" 2>&1 | grep -v MLLOG | tee "$out/dp_${ranks}_${preset}.txt" | grep -E "step +[0-9]+/|parallel|communication|rror" || true
    timeout "$secs" "$lathe" train "${args[@]}" --set checkpoint.dir="$build/run_dp1" 2>&1 | grep -v MLLOG | tee "$out/dp_1_${preset}.txt" | \
      grep -E "step +[0-9]+/|rror" || true
    ;;
  exec)
    shift
    PATH="$build/bin:$PATH" "$@"
    ;;
  all)
    secs="${2:-200}"
    "$0" build > /dev/null && "$0" conformance > /dev/null && "$0" bench > /dev/null
    OUT="$out/cold" "$0" mlperf "$secs" cold notorch > /dev/null
    "$0" mlperf "$secs" warm > /dev/null
    "$0" summary | tee "$out/summary.md"
    ;;
  *) echo "usage: $0 build|conformance|bench|mlperf SECS [cold|warm] [notorch]|profile|summary|all [SECS]"; exit 2 ;;
esac
