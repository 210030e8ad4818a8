/**
 * Gathers kept rows of a strided KV buffer into a compact one: for each slot of a chunk and each
 * kept position r (`rows` per slot),
 *
 *   dst[((slot0 + slot) · rows + r) · dim + c] = src[(slot · keyStride + keep[slot0 + slot, r]) · dim + c]
 *
 * with `keep` the kept row indices `[slots][rows]` (u32) of the whole cache and `dst` the kept rows
 * of every slot (`keepOffset` = slot0 · rows: the chunk's first kept row). `GpuKVCache.retain`
 * gathers into a scratch buffer, then puts the rows back at positions 0 … rows − 1 with the
 * append kernel (a gather in place would race: a kept row can be another thread's destination).
 */
import { memoKernel } from './memo-kernel.js';

/** Uniform parameter block of the gather kernel (8 × 4 bytes). */
export const GATHER_ROWS_PARAMS = ['count', 'rows', 'dim', 'keyStride', 'keepOffset', 'tilesX', 'pad0', 'pad1'] as const;

/** Threads per workgroup of the gather kernel. */
export const GATHER_ROWS_THREADS = 256;

/** Generates the WGSL of the row gather kernel (`count` = slots · rows · dim elements). */
export const gatherRowsWgsl = memoKernel(function gatherRowsWgsl(): string {
  return /* wgsl */ `
struct Params { count: u32, rows: u32, dim: u32, keyStride: u32, keepOffset: u32, tilesX: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> keep: array<u32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(${GATHER_ROWS_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let x = (wid.x + wid.y * P.tilesX) * ${GATHER_ROWS_THREADS}u + lid;
  if (x >= P.count) { return; }
  let c = x % P.dim;
  let row = x / P.dim;
  let slot = row / P.rows;
  let kept = keep[P.keepOffset + row];
  dst[P.keepOffset * P.dim + x] = src[(slot * P.keyStride + kept) * P.dim + c];
}
`;
});
