/**
 * Kernel: splits NSA's union rows (spec §3.7, `combine: 'union'`) into a part shared by a block of
 * QB consecutive queries and a per-query rest, so the sliding window's blocks are attended once
 * per query block instead of once per query (the CPU attends the union row in one softmax; the
 * two parts are disjoint and cover the row exactly, and `branch-merge-wgsl.ts` merges their
 * softmaxes by lse):
 *
 *   window of t      W(t) = [fw(t), IC(t)],  fw(t) = floor(max(0, t − w + 1) / l′),  IC(t) = floor(t / l′)
 *   shared (mode 1)  S_b = [fw(t_last), IC(t_first)] = ∩_{t in query block b} W(t)    (empty if lo > hi)
 *   rest   (mode 0)  R_t = U_t \ S_b   (U_t the union row the top-n kernel wrote; ascending order kept)
 *
 * Since fw and IC never decrease with t, S_b is inside every W(t) of the block, hence inside
 * every union row U_t: each query still attends exactly U_t = R_t ⊎ S_b. At l′ = 64, w = 512 and
 * QB = 64 the shared row holds 8 of a query's 9 window blocks (the first window block belongs to
 * all but the block's last query, so it stays in the rest).
 *
 * Mode 0: one thread per union row (KV slot, query), reading the union CSR (fixed stride) and
 * writing the rest at the same stride. Mode 1: one thread per shared row (KV slot, query block).
 */
import { memoKernel } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the split kernel (u32 fields). */
export const WINDOW_SPLIT_PARAMS = [
  'rows', 'querySeq', 'queryOffset', 'tilesX',
  'selectionBlock', 'window', 'queryBlock', 'mode',
  'strideIn', 'strideOut', 'pad0', 'pad1',
] as const;

/** Threads per workgroup of the split kernel (one row each). */
export const WINDOW_SPLIT_THREADS = 64;

/** Generates the WGSL of the split kernel. */
export const windowSplitWgsl = memoKernel(function windowSplitWgsl(): string {
  return /* wgsl */ `
struct Params {
  rows: u32, querySeq: u32, queryOffset: u32, tilesX: u32,
  selectionBlock: u32, window: u32, queryBlock: u32, mode: u32,
  strideIn: u32, strideOut: u32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> unionBounds: array<u32>;
@group(0) @binding(2) var<storage, read> unionIndices: array<u32>;
@group(0) @binding(3) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(4) var<storage, read_write> indices: array<u32>;

/** First block of the sliding window of the query at absolute position t. */
fn firstWindowBlock(t: u32) -> u32 {
  if (t + 1u > P.window) { return (t + 1u - P.window) / P.selectionBlock; }
  return 0u;
}

@compute @workgroup_size(${WINDOW_SPLIT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * P.tilesX) * ${WINDOW_SPLIT_THREADS}u + lid;
  if (row >= P.rows) { return; }
  let queryBlocks = (P.querySeq + P.queryBlock - 1u) / P.queryBlock;
  var block = 0u;
  if (P.mode == 0u) { block = (row % P.querySeq) / P.queryBlock; } else { block = row % queryBlocks; }
  let first = block * P.queryBlock;
  let last = min(first + P.queryBlock, P.querySeq) - 1u;
  let lo = firstWindowBlock(P.queryOffset + last);
  let hi = (P.queryOffset + first) / P.selectionBlock;
  let start = row * P.strideOut;
  var e = 0u;
  if (P.mode == 0u) {
    for (var a = unionBounds[2u * row]; a < unionBounds[2u * row + 1u]; a++) {
      let j = unionIndices[a];
      if (j < lo || j > hi) { indices[start + e] = j; e++; }
    }
  } else {
    for (var j = lo; j <= hi; j++) { indices[start + e] = j; e++; }
  }
  bounds[2u * row] = start;
  bounds[2u * row + 1u] = start + e;
}
`;
});
