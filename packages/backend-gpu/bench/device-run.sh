#!/bin/sh
# The device run (H100): every package's GPU checks, the bench's GPU sweep and its gpu-attention
# suite (our dense WGSL vs every GPU method on resident inputs), the robust-Dawn comparison and
# PyTorch's SDPA reference. Expects the carried .gl and .node-bin from prepare-device.sh.
# Usage: device-run.sh [SEQS] [REPEATS]; STEPS (default "checks sweep robust torch") picks steps.
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
mkdir -p /tmp/node && xz -dc .node-bin/node.xz > /tmp/node/node && chmod +x /tmp/node/node
N=/tmp/node/node
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
SEQS=${1:-4096,16384,65536}
REPEATS=${2:-5}
STEPS=${STEPS:-checks suite torch robust sweep}
# GPU_METHODS=moba,nsa restricts the gpu-attention suite to those methods (dense always runs).
METHODS=""
[ -n "$GPU_METHODS" ] && METHODS=",\"methods\":[$(echo "$GPU_METHODS" | sed 's/[^,][^,]*/"&"/g')]"
CONTEXT="{\"quick\":false,\"seqLengths\":[$SEQS],\"repeats\":$REPEATS,\"seed\":1,\"backend\":\"gpu\"$METHODS}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader || true
# CLOCKS=1 samples the GPU's clocks, P-state, power and utilisation every 100 ms into $OUT/clocks.csv
# while the steps run (to tell a kernel's slowdown from the GPU idling down between small steps).
CLOCKS_PID=""
if [ "${CLOCKS:-0}" = 1 ]; then
  nvidia-smi --query-gpu=timestamp,pstate,clocks.sm,clocks.mem,power.draw,utilization.gpu --format=csv -lms 100 > "$OUT/clocks.csv" 2>&1 &
  CLOCKS_PID=$!
fi
for step in $STEPS; do
  case $step in
    checks) timeout ${CHECK_TIMEOUT:-240} $N .node-bin/bench/bench.js gpu-check --json "$OUT/gpu-checks.json" 2>&1 | tee "$OUT/gpu-checks.log" ;;
    # The gpu-attention suite (dense WGSL vs every GPU method, resident inputs, H=32 D=128) on its own,
    # rows streamed to the log as they come; then the sweep's GPU cells (host workloads, quality vs CPU dense).
    # SUITES (default: gpu-attention gpu-delta-stack) picks the GPU suites, each to $OUT/<id>.json.
    suite) for id in ${SUITES:-gpu-attention gpu-delta-stack}; do
             timeout ${SUITE_TIMEOUT:-240} $N .node-bin/bench/bench.js suite --id $id --context "$CONTEXT" > "$OUT/$id.json" 2> "$OUT/$id.log"; tail -c 3000 "$OUT/$id.log"
           done ;;
    sweep) timeout ${SWEEP_TIMEOUT:-200} $N .node-bin/bench/bench.js --backend gpu --no-ort --no-progress --seq ${SWEEP_SEQS:-1024,4096} --workloads ${SWEEP_WORKLOADS:-needle,structured} \
             --suites '' --budgets 1 --repeats 3 --time-budget 0 --out "$OUT/results" > "$OUT/bench.log" 2>&1; tail -c 3000 "$OUT/bench.log" ;;
    robust) (cd .node-bin/bundle && timeout ${ROBUST_TIMEOUT:-120} $N gpu-check.js --robust --no-checks --bench "$SEQS" --repeats 3 --out "$OUT/gpu-bench-robust.json") 2>&1 | tee "$OUT/robust.log" ;;
    torch) PYTHONUNBUFFERED=1 timeout 120 python3 packages/backend-gpu/bench/torch_sdpa.py "$SEQS" 2>&1 | tee "$OUT/torch-sdpa.log" ;;
  esac
done
[ -n "$CLOCKS_PID" ] && kill "$CLOCKS_PID" 2>/dev/null
true
