/**
 * Gathers the last query row of every query slot of a resident call into a compact buffer:
 *
 *   dst[slot][0][e] = src[slot][querySeq − 1][e]
 *
 * so a decode step of "the last query over the resident keys" can run on a prefill-shaped
 * resident call (benchmarks) through the kernels' compact `[slots][querySeq][D]` layout with
 * querySeq = 1, without reading anything back (the resident q buffers are not copy sources).
 */
import { memoKernel } from './memo-kernel.js';

/** Uniform parameter block of the gather kernel (4 × 4 bytes). */
export const DECODE_GATHER_PARAMS = ['count', 'querySeq', 'dim', 'tilesX'] as const;

/** Threads per workgroup of the gather kernel. */
export const DECODE_GATHER_THREADS = 64;

/** Generates the WGSL of the last-row gather kernel. */
export const decodeGatherWgsl = memoKernel(function decodeGatherWgsl(): string {
  return /* wgsl */ `
struct Params { count: u32, querySeq: u32, dim: u32, tilesX: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(${DECODE_GATHER_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let x = (wid.x + wid.y * P.tilesX) * ${DECODE_GATHER_THREADS}u + lid;
  if (x >= P.count) { return; }
  let slot = x / P.dim;
  let e = x % P.dim;
  dst[x] = src[(slot * P.querySeq + P.querySeq - 1u) * P.dim + e];
}
`;
});
