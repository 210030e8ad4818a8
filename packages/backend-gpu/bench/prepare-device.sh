#!/bin/sh
# Prepares, on the development machine, what device-run.sh needs on the GPU machine (which has no
# Node and no registry access): .node-bin/node.xz (this Node, compressed), .node-bin/bundle/gpu-check.js
# (self-contained bundle) with node_modules/webgpu (Dawn for linux-x64 only) beside it, and .gl
# (Vulkan/GL loader debs). Run from the repository root; both folders are git-ignored.
set -e
ROOT=$(pwd)
PKG="$ROOT/packages/backend-gpu"
mkdir -p .node-bin/bundle/node_modules/webgpu/dist
[ -f .node-bin/node.xz ] || xz -T2 -6 -c "$(command -v node)" > .node-bin/node.xz
(cd "$PKG" && pnpm exec tsup --config tsup.device.config.ts)
W="$PKG/node_modules/webgpu"
cp "$W/index.js" "$W/package.json" .node-bin/bundle/node_modules/webgpu/
cp "$W/dist/linux-x64.dawn.node" .node-bin/bundle/node_modules/webgpu/dist/
if [ ! -d .gl ]; then
  mkdir -p .gl /tmp/amd64/partial
  o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
  apt-get $o update
  (cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
fi
du -sh .node-bin .gl
