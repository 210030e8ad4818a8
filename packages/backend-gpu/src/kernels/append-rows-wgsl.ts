/**
 * Appends rows to a strided KV buffer: the T new rows of every KV slot of a chunk, uploaded
 * together as `src[slot][t][dim]` (from element `srcOffset`), land at rows `first … first + T − 1`
 * of each slot,
 *
 *   dst[(slot · keyStride + first + t) · dim + c] = src[srcOffset + (slot · T + t) · dim + c]
 *
 * so a decode step's new tokens go up in one upload and one dispatch per tensor instead of one
 * `writeBuffer` per KV slot and tensor (what `GpuKVCache.append` did, 0.2–0.5 ms a step at 32
 * KV heads on the H100).
 */
import { memoKernel } from './memo-kernel.js';

/** Uniform parameter block of the append kernel (8 × 4 bytes). */
export const APPEND_ROWS_PARAMS = ['count', 'rows', 'dim', 'keyStride', 'first', 'tilesX', 'srcOffset', 'pad0'] as const;

/** Threads per workgroup of the append kernel. */
export const APPEND_ROWS_THREADS = 256;

/** Generates the WGSL of the append kernel (`count` = slots · rows · dim elements). */
export const appendRowsWgsl = memoKernel(function appendRowsWgsl(): string {
  return /* wgsl */ `
struct Params { count: u32, rows: u32, dim: u32, keyStride: u32, first: u32, tilesX: u32, srcOffset: u32, pad0: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(${APPEND_ROWS_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let x = (wid.x + wid.y * P.tilesX) * ${APPEND_ROWS_THREADS}u + lid;
  if (x >= P.count) { return; }
  let c = x % P.dim;
  let r = x / P.dim;
  let slot = r / P.rows;
  let t = r % P.rows;
  dst[(slot * P.keyStride + P.first + t) * P.dim + c] = src[P.srcOffset + x];
}
`;
});
