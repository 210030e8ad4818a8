/**
 * Region means in WGSL (BiFormer's region representatives, spec routing.md §14), per slot,
 * region ρ and channel c:
 *
 *   start_ρ = max(lo, (first + ρ)·R)     end_ρ = min(hi, (first + ρ + 1)·R)
 *   mean_ρc = (1 / (end_ρ − start_ρ)) · Σ_{p ∈ [start_ρ, end_ρ)} x[p − lo]_c
 *
 * Keys use lo = 0, first = 0, hi = keySeq; queries (the last querySeq positions) use lo =
 * queryOffset, first = ⌊queryOffset / R⌋, hi = keySeq, so a chunk that starts mid-region averages
 * only the queries it holds, as the CPU does. One thread per output channel: the reads of a row
 * are coalesced across the workgroup. The result goes to `outSlot0 + slot` of a call-wide buffer
 * `[slot][regions][dim]`, so routing may read every head of a batch (shared scope) across chunks.
 * `rowsPerSlot` is the rows between consecutive slots of x: the chunk's `keyStride` for keys (a KV
 * cache's capacity, whose spare rows are never read), `querySeq` for queries.
 */

/** Uniform parameter block of the region mean kernel. */
export const REGION_MEAN_PARAMS = ['rowsPerSlot', 'dim', 'slots', 'regions', 'regionSize', 'first', 'lo', 'hi', 'outSlot0', 'tilesX'] as const;

/** Threads per workgroup of the region mean kernel. */
export const REGION_MEAN_THREADS = 128;

/** Generates the WGSL of the region mean kernel. */
export function regionMeanWgsl(): string {
  return /* wgsl */ `
struct Params { rowsPerSlot: u32, dim: u32, slots: u32, regions: u32, regionSize: u32, first: u32, lo: u32, hi: u32, outSlot0: u32, tilesX: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> means: array<f32>;

@compute @workgroup_size(${REGION_MEAN_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * P.tilesX) * ${REGION_MEAN_THREADS}u + lid;
  if (id >= P.slots * P.regions * P.dim) { return; }
  let c = id % P.dim;
  let region = (id / P.dim) % P.regions;
  let slot = id / (P.dim * P.regions);
  let start = max(P.lo, (P.first + region) * P.regionSize);
  let end = min(P.hi, (P.first + region + 1u) * P.regionSize);
  var sum = 0.0;
  for (var p = start; p < end; p++) {
    sum += x[(slot * P.rowsPerSlot + p - P.lo) * P.dim + c];
  }
  means[((P.outSlot0 + slot) * P.regions + region) * P.dim + c] = sum / f32(end - start);
}
`;
}
