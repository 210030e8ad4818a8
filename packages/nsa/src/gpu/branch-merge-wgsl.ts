/**
 * Kernel: merges two exact softmax branches over disjoint key sets into the softmax over their
 * union (the split-softmax identity; NSA's union rows split by `window-split-wgsl.ts`):
 *
 *   m = max(lse_a, lse_b),  w_a = exp(lse_a − m),  w_b = exp(lse_b − m)          (0 for an empty branch, lse −∞)
 *   o = (w_a · o_a + w_b · o_b) / (w_a + w_b),  lse = m + log(w_a + w_b)
 *
 * Branch a is the resident's own out / lse (overwritten), branch b a target buffer pair. Mode 0:
 * one thread per output element writes o (reads both lse, writes no lse); mode 1: one thread per
 * row writes lse. The modes run as two dispatches of one pass, in that order, so no thread reads
 * an lse another has already replaced.
 */
import { memoKernel } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the merge kernel (u32 fields). */
export const BRANCH_MERGE_PARAMS = ['count', 'rowFloats', 'tilesX', 'mode'] as const;

/** Threads per workgroup of the merge kernel. */
export const BRANCH_MERGE_THREADS = 256;

/** Generates the WGSL of the merge kernel. */
export const branchMergeWgsl = memoKernel(function branchMergeWgsl(): string {
  return /* wgsl */ `
struct Params { count: u32, rowFloats: u32, tilesX: u32, mode: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;
@group(0) @binding(3) var<storage, read> outB: array<f32>;
@group(0) @binding(4) var<storage, read> lseB: array<f32>;

@compute @workgroup_size(${BRANCH_MERGE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let x = (wid.x + wid.y * P.tilesX) * ${BRANCH_MERGE_THREADS}u + lid;
  if (x >= P.count) { return; }
  var row = x;
  if (P.mode == 0u) { row = x / P.rowFloats; }
  let a = lse[row];
  let b = lseB[row];
  let m = max(a, b);
  // An empty branch has lse −∞ (and output 0): weight 0, without evaluating exp(−∞ − m).
  let wa = select(0.0, exp(a - m), a >= -3.0e38);
  let wb = select(0.0, exp(b - m), b >= -3.0e38);
  let total = wa + wb;
  if (P.mode == 0u) {
    out[x] = select(0.0, (wa * out[x] + wb * outB[x]) / total, total > 0.0);
  } else {
    lse[row] = select(a, m + log(total), total > 0.0);
  }
}
`;
});
