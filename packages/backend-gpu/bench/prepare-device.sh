#!/bin/sh
# Prepares, on the development machine, what device-run.sh needs on the GPU machine (which has no
# Node and no registry access), in two git-ignored folders at the repository root:
#   .node-bin/node.xz              this Node, compressed
#   .node-bin/bench/bench.js       the bench CLI as one bundle (every package; `bench gpu-check`, `--backend gpu`)
#   .node-bin/bundle/gpu-check.js  backend-gpu's own device program (checks, tuning sweep, robust/toggle runs)
#   .node-bin/node_modules/webgpu  Dawn for linux-x64 (found by both bundles through Node's lookup)
#   .gl/                           Vulkan/GL loader debs
# Run from the repository root after `pnpm build`.
set -e
ROOT=$(pwd)
PKG="$ROOT/packages/backend-gpu"
mkdir -p .node-bin/node_modules/webgpu/dist
[ -f .node-bin/node.xz ] || xz -T2 -6 -c "$(command -v node)" > .node-bin/node.xz
(cd "$PKG" && pnpm exec tsup --config tsup.device.config.ts)
(cd "$ROOT/apps/bench" && pnpm exec tsup --config tsup.device.config.ts)
W="$PKG/node_modules/webgpu"
cp "$W/index.js" "$W/package.json" .node-bin/node_modules/webgpu/
cp "$W/dist/linux-x64.dawn.node" .node-bin/node_modules/webgpu/dist/
rm -rf .node-bin/bundle/node_modules
if [ ! -d .gl ]; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .node-bin .gl
