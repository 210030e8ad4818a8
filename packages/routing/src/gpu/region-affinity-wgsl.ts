/**
 * Region-to-region affinity in WGSL (BiFormer's routing graph, spec routing.md §14), per routing
 * head, query region ρ and key region j ≤ ρ (every j when non-causal):
 *
 *   'head':    A[ρ, j] = Q̄_{h,ρ} · K̄_{kv(h),j}                 (one graph per query head h)
 *   'shared':  A[ρ, j] = Σ_{h of the batch} Q̄_{h,ρ} · K̄_{kv(h),j}  (one graph per batch, from the
 *              full channel dimension; every KV head of the batch routes with it)
 *
 * One thread per (routing head, ρ, j), accumulating in f32 (the CPU accumulates in f64 and
 * rounds the affinity to f32; see the package README for what that means for near-ties).
 * Scores go to a per-chunk scratch `[routing head][queryRegions][keyRegions]`: (S/R)² per head,
 * never S².
 */

/** Uniform parameter block of the affinity kernel. */
export const REGION_AFFINITY_PARAMS = [
  'selSlots', 'selSlot0', 'queryRegions', 'keyRegions',
  'firstRegion', 'causal', 'sharedGraph', 'groupSize',
  'queryHeads', 'kvHeads', 'dim', 'tilesX',
] as const;

/** Threads per workgroup of the affinity kernel. */
export const REGION_AFFINITY_THREADS = 128;

/** Generates the WGSL of the affinity kernel. */
export function regionAffinityWgsl(): string {
  return /* wgsl */ `
struct Params {
  selSlots: u32, selSlot0: u32, queryRegions: u32, keyRegions: u32,
  firstRegion: u32, causal: u32, sharedGraph: u32, groupSize: u32,
  queryHeads: u32, kvHeads: u32, dim: u32, tilesX: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> queryMeans: array<f32>;
@group(0) @binding(2) var<storage, read> keyMeans: array<f32>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;

fn dotMeans(queryHead: u32, r: u32, j: u32) -> f32 {
  let qo = (queryHead * P.queryRegions + r) * P.dim;
  let ko = ((queryHead / P.groupSize) * P.keyRegions + j) * P.dim;
  var s = 0.0;
  for (var c = 0u; c < P.dim; c++) { s += queryMeans[qo + c] * keyMeans[ko + c]; }
  return s;
}

@compute @workgroup_size(${REGION_AFFINITY_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * P.tilesX) * ${REGION_AFFINITY_THREADS}u + lid;
  if (id >= P.selSlots * P.queryRegions * P.keyRegions) { return; }
  let j = id % P.keyRegions;
  let r = (id / P.keyRegions) % P.queryRegions;
  let head0 = id / (P.keyRegions * P.queryRegions);
  let allowed = select(P.keyRegions, P.firstRegion + r + 1u, P.causal == 1u);
  if (j >= allowed) { return; }
  let head = P.selSlot0 + head0;
  var s = 0.0;
  if (P.sharedGraph == 1u) {
    // head is a (batch, KV head) slot: sum over every query head of its batch.
    let b = head / P.kvHeads;
    for (var h = 0u; h < P.queryHeads; h++) { s += dotMeans(b * P.queryHeads + h, r, j); }
  } else {
    s = dotMeans(head, r, j);
  }
  scores[id] = s;
}
`;
}
