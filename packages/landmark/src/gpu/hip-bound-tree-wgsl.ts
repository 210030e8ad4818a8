/**
 * HiP's `bound` representative in WGSL: the CPU `RangeBoundTree` of every KV slot, built level by
 * level on the GPU (one dispatch per level, one thread per (slot, node, channel)):
 *
 *   node (level l, index j) covers key chunks [j·2^l, (j+1)·2^l), chunk c = keys [c·cs, (c+1)·cs) ∩ [0, S)
 *   level 0:  lo_j = min_{t ∈ chunk j} k_t,  hi_j = max_{t ∈ chunk j} k_t                (per channel)
 *   level l:  lo_j = min(lo_{2j}, lo_{2j+1}),  hi_j = max(hi_{2j}, hi_{2j+1})   (2j+1 when it exists)
 *
 * min/max are exact, so the bounds equal the CPU tree's bit for bit. Layout per slot:
 * `tree[(slot · totalNodes + levelOffset(l) + j) · 2D + c]` = lo, `+ D` = hi, with level l holding
 * ⌈chunks / 2^l⌉ nodes after the levels below it.
 */
import { memoKernel } from '@sparse-attn/backend-gpu';

import { paramsStructWgsl } from './wgsl-snippets.js';

/** Uniform parameter block of the bound-tree kernel (`keyStride`: rows between KV slots in k, key t of slot s at row `s · keyStride + t`). */
export const HIP_BOUND_TREE_PARAMS = [
  'keySeq', 'chunkSize', 'slots', 'tilesX',
  'level', 'nodes', 'childNodes', 'totalNodes',
  'offset', 'childOffset', 'pad0', 'keyStride',
] as const;

/** Threads per workgroup of the bound-tree kernel. */
export const HIP_BOUND_TREE_THREADS = 256;

/** Nodes per level of a tree over `chunks` key chunks, up to `levels` levels. */
export function boundTreeLevels(chunks: number, levels: number): number[] {
  const counts: number[] = [];
  let n = Math.max(1, chunks);
  for (let l = 0; l < levels; l++) {
    counts.push(n);
    n = Math.ceil(n / 2);
  }
  return counts;
}

/** Generates the WGSL of the bound-tree kernel for head dim `headDim`. */
export const hipBoundTreeWgsl = memoKernel((o: { readonly headDim: number }): string => {
  const NT = HIP_BOUND_TREE_THREADS;
  return /* wgsl */ `
${paramsStructWgsl(HIP_BOUND_TREE_PARAMS)}

const D: u32 = ${o.headDim}u;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read_write> tree: array<f32>;

@compute @workgroup_size(${NT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * P.tilesX) * ${NT}u + lid;
  if (id >= P.slots * P.nodes * D) { return; }
  let c = id % D;
  let node = (id / D) % P.nodes;
  let slot = id / (D * P.nodes);
  var lo = 3.0e38;
  var hi = -3.0e38;
  if (P.level == 0u) {
    let start = node * P.chunkSize;
    let end = min(start + P.chunkSize, P.keySeq);
    for (var t = start; t < end; t++) {
      let x = k[(slot * P.keyStride + t) * D + c];
      lo = min(lo, x);
      hi = max(hi, x);
    }
  } else {
    for (var side = 0u; side < 2u; side++) {
      let child = 2u * node + side;
      if (child < P.childNodes) {
        let at = (slot * P.totalNodes + P.childOffset + child) * 2u * D;
        lo = min(lo, tree[at + c]);
        hi = max(hi, tree[at + D + c]);
      }
    }
  }
  let at = (slot * P.totalNodes + P.offset + node) * 2u * D;
  tree[at + c] = lo;
  tree[at + D + c] = hi;
}
`;
});
