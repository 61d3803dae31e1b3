#!/usr/bin/env bash
# amd_kfd from the command line. Without /dev/kfd, `lathe backends` says why the backend is
# unusable and `lathe train` on it stops with that reason and the usable backends. Through the
# test driver, a short training run follows the cpu backend's loss curve within float32 rounding;
# on the emulator, 20 steps of the default config follow it within 1e-6 relative.
set -euo pipefail
lathe="$1"; work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
cd "$work"
if [ ! -e /dev/kfd ]; then
  "$lathe" backends > backends.out
  grep -A2 "^amd_kfd" backends.out | grep -q "reason  no /dev/kfd" || { cat backends.out; exit 1; }
  if "$lathe" train --set backend.name=amd_kfd --set train.steps=1 --set checkpoint.dir=none > train.out 2>&1; then
    echo "training on amd_kfd without /dev/kfd succeeded"; exit 1
  fi
  grep -q "no /dev/kfd" train.out && grep -q "Usable backends: .*cpu" train.out || { cat train.out; exit 1; }
  echo "without /dev/kfd: $(grep -o 'Usable backends: [^(]*' train.out)"
fi
small=(--set model.hidden_size=32 --set model.intermediate_size=64 --set model.num_heads=2 --set model.num_kv_heads=1
       --set model.num_layers=1 --set data.synthetic_vocab=16 --set train.batch_size=4 --set train.seq_len=16
       --set train.steps=20 --set eval.every=10 --set eval.batches=2 --set checkpoint.every=0 --set log.plot=false
       --set checkpoint.export_hf=false --set log.every=1)
"$lathe" train "${small[@]}" --set checkpoint.dir=cpu > cpu.out 2>&1
LATHE_AMD_KFD_DRIVER=test "$lathe" train "${small[@]}" --set checkpoint.dir=amd --set backend.name=amd_kfd > amd.out 2>&1 || { cat amd.out; exit 1; }
grep -q "test driver" amd.out || { echo "the run did not report the test driver"; cat amd.out; exit 1; }
python3 - cpu/metrics.jsonl amd/metrics.jsonl <<'PY'
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p)] for p in sys.argv[1:3])
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
assert len(a) == len(b) == 20 and worst < 1e-4, worst
print("amd_kfd (test driver) follows cpu over 20 steps: largest relative loss difference %.2e" % worst)
PY
# The default config for 20 steps with the machine code executed on the emulator.
default=(--set train.steps=20 --set log.every=1 --set log.plot=false --set checkpoint.export_hf=false)
"$lathe" train "${default[@]}" --set checkpoint.dir=cpu_default > cpu_default.out 2>&1 || { cat cpu_default.out; exit 1; }
LATHE_AMD_KFD_DRIVER=emulator "$lathe" train "${default[@]}" --set checkpoint.dir=emu_default --set backend.name=amd_kfd > emu.out 2>&1 || { cat emu.out; exit 1; }
grep -q "emulator" emu.out || { echo "the run did not report the emulator"; cat emu.out; exit 1; }
python3 - cpu_default/metrics.jsonl emu_default/metrics.jsonl <<'PY'
import json, sys
a, b = ([json.loads(l)["loss"] for l in open(p) if '"loss"' in l] for p in sys.argv[1:3])
worst = max(abs(x - y) / abs(x) for x, y in zip(a, b))
assert len(a) == len(b) == 20 and worst < 1e-6, (len(a), len(b), worst)
print("amd_kfd (emulator, gfx942 machine code) follows cpu over 20 steps of the default config: largest relative loss difference %.2e" % worst)
PY
# The test driver is test support beside the plugin: without it, asking for it says where it was looked for.
plugin="$(dirname "$lathe")/../lib/lathe/plugins/lathe_amd_kfd.so"
mkdir alone && cp "$plugin" alone/
if LATHE_PLUGIN_PATH="$work/alone" LATHE_AMD_KFD_DRIVER=test "$lathe" train "${small[@]}" --set checkpoint.dir=none \
     --set backend.name=amd_kfd > alone.out 2>&1; then
  echo "training on the test driver without its library succeeded"; exit 1
fi
grep -q "amd_kfd_test_driver.so" alone.out || { cat alone.out; exit 1; }
echo "without its library the test driver is refused: $(grep -o 'needs [^,]*' alone.out | head -1)"
