/**
 * StreamingLLM's kept entries (sinks + recent, `eviction-tracker.ts` `sink-recent`) as two
 * compact CSR selections, in WGSL. Query i at position p keeps
 *
 *   K(p) = [0, sinks) ∪ [lo(p), p + 1),        lo(p) = max(sinks, p + 1 − recent)
 *
 * (everything while p + 1 ≤ sinks + recent). One row per query would cost querySeq · C indices
 * per KV slot (0.5 GiB at 64k × 2004), so K(p) is split into two disjoint parts whose union is
 * exact under the executor's causal mask:
 *
 *   block rows (one per 64-query block ending at p₁):  [0, min(sinks, p₁ + 1)) ∪ [lo(p₁), p₁ + 1)
 *   band rows  (one per query):                        [lo(p), min(lo(p₁), p + 1))      (< 64 entries)
 *
 * since lo is non-decreasing, a query of the block sees [lo(p₁), p + 1) of the block row and
 * the band adds the rest of its window. The two attentions are merged by log-sum-exp
 * ({@link mergeAttentionWgsl}).
 */

/** Queries per block row (the executor's 64-row tile). */
export const SINK_RECENT_BLOCK = 64;

/** Uniform parameter block of the row kernel. */
export const SINK_RECENT_PARAMS = ['querySeq', 'keySeq', 'queryOffset', 'slots', 'sinks', 'recent', 'rows', 'stride', 'band', 'tilesX', 'pad0', 'pad1'] as const;

/** Threads per workgroup of the row kernel (one thread per row). */
export const SINK_RECENT_THREADS = 64;

/** Generates the WGSL of the row kernel (`band` = 0: block rows, 1: band rows). */
export function sinkRecentRowsWgsl(): string {
  return /* wgsl */ `
const QB: u32 = ${SINK_RECENT_BLOCK}u;
struct Params {
  querySeq: u32, keySeq: u32, queryOffset: u32, slots: u32,
  sinks: u32, recent: u32, rows: u32, stride: u32,
  band: u32, tilesX: u32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(2) var<storage, read_write> indices: array<u32>;

// max(sinks, p + 1 − recent), without unsigned underflow.
fn lowest(p: u32) -> u32 {
  return select(P.sinks, max(P.sinks, p + 1u - P.recent), p + 1u >= P.recent);
}

@compute @workgroup_size(${SINK_RECENT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * P.tilesX) * ${SINK_RECENT_THREADS}u + lid;
  if (row >= P.slots * P.rows) { return; }
  let r = row % P.rows;
  let start = row * P.stride;
  var n = 0u;
  if (P.band == 0u) {
    let last = P.queryOffset + min(P.querySeq - 1u, r * QB + QB - 1u);
    for (var j = 0u; j < min(P.sinks, last + 1u); j++) { indices[start + n] = j; n++; }
    for (var j = lowest(last); j <= last; j++) { indices[start + n] = j; n++; }
  } else {
    let p = P.queryOffset + r;
    let last = P.queryOffset + min(P.querySeq - 1u, (r / QB) * QB + QB - 1u);
    let end = min(lowest(last), p + 1u);
    for (var j = lowest(p); j < end; j++) { indices[start + n] = j; n++; }
  }
  bounds[2u * row] = start;
  bounds[2u * row + 1u] = start + n;
}
`;
}
