/**
 * Kernel: the number of entries of a GPU selection, Σ_r (bounds[2r + 1] − bounds[2r]), summed on
 * the GPU so that a benchmark can report density without reading the selection back.
 *
 * One thread per row, a workgroup tree reduction, then one `atomicAdd` per workgroup into
 * `total[0]` (u32: at 64k queries × 32 heads × 32 entries the count is 2^26, far below 2^32).
 */
import { memoKernel } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the counting kernel (u32 fields). */
export const COUNT_ENTRIES_PARAMS = ['rows', 'tilesX', 'pad0', 'pad1'] as const;

/** Threads per workgroup of the counting kernel. */
export const COUNT_ENTRIES_THREADS = 256;

/** Generates the WGSL of the counting kernel. */
export const countEntriesWgsl = memoKernel(function countEntriesWgsl(): string {
  return /* wgsl */ `
struct Params { rows: u32, tilesX: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> bounds: array<u32>;
@group(0) @binding(2) var<storage, read_write> total: array<atomic<u32>>;

var<workgroup> partial: array<u32, ${COUNT_ENTRIES_THREADS}>;

@compute @workgroup_size(${COUNT_ENTRIES_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * P.tilesX) * ${COUNT_ENTRIES_THREADS}u + lid;
  var n = 0u;
  if (row < P.rows) { n = bounds[2u * row + 1u] - bounds[2u * row]; }
  partial[lid] = n;
  workgroupBarrier();
  for (var width = ${COUNT_ENTRIES_THREADS / 2}u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] += partial[lid + width]; }
    workgroupBarrier();
  }
  if (lid == 0u) { atomicAdd(&total[0], partial[0]); }
}
`;
});
