#!/bin/sh
# Runs the GPU checks, the WGSL benchmark and the PyTorch reference on the device machine.
# Expects the carried .gl (Vulkan loader debs) and .node-bin (node.xz + the bundle from
# `pnpm build:device` with node_modules/webgpu beside it). Usage: device-run.sh SEQS [extra args]
set -e
for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
mkdir -p /tmp/node && xz -dc .node-bin/node.xz > /tmp/node/node && chmod +x /tmp/node/node
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
SEQS=${1:-4096,16384,65536}
shift || true
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader || true
(cd .node-bin/bundle && timeout ${GPU_TIMEOUT:-420} /tmp/node/node gpu-check.js --bench "$SEQS" --out "$OUT/gpu-bench.json" "$@") 2>&1 | tee "$OUT/gpu-check.log"
PYTHONUNBUFFERED=1 timeout 120 python3 packages/backend-gpu/bench/torch_sdpa.py "$SEQS" 2>&1 | tee "$OUT/torch-sdpa.log"
