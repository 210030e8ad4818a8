/**
 * Kernel: NSA's gated combination of its three branch outputs (arXiv:2502.11089 Eq. 5, spec §3.6),
 *
 *   o_t^h = g_cmp^h · o_t^{cmp,h} + g_slc^h · o_t^{slc,h} + g_win^h · o_t^{win,h}
 *
 * with one constant gate triple per query head (the config's `gates`). One thread per output
 * element; the selected branch's output is read from and overwritten in `out` (same element,
 * same thread), the other two come from their own buffers.
 */
import { memoKernel } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the merge kernel (u32 fields). */
export const GATED_MERGE_PARAMS = ['count', 'rowFloats', 'querySlot0', 'queryHeads', 'tilesX', 'pad0', 'pad1', 'pad2'] as const;

/** Threads per workgroup of the merge kernel. */
export const GATED_MERGE_THREADS = 256;

/** Generates the WGSL of the merge kernel. */
export const gatedMergeWgsl = memoKernel(function gatedMergeWgsl(): string {
  return /* wgsl */ `
struct Params { count: u32, rowFloats: u32, querySlot0: u32, queryHeads: u32, tilesX: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> gates: array<f32>;
@group(0) @binding(2) var<storage, read> cmp: array<f32>;
@group(0) @binding(3) var<storage, read> win: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(${GATED_MERGE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * P.tilesX) * ${GATED_MERGE_THREADS}u + lid;
  if (id >= P.count) { return; }
  // Query slot (batch · queryHeads + head) of this element, relative to the call.
  let h = (P.querySlot0 + id / P.rowFloats) % P.queryHeads;
  out[id] = gates[3u * h] * cmp[id] + gates[3u * h + 1u] * out[id] + gates[3u * h + 2u] * win[id];
}
`;
});
