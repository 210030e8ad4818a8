/**
 * Top-k key regions per query region in WGSL (BiFormer's routing index I_ρ, spec routing.md §14),
 * one workgroup per (routing head, query region ρ):
 *
 *   allowed = causal ? ρ + 1 : keyRegions      own = first + ρ
 *   key(j)  = (includeDiagonal and j = own) ? +BIG : A[ρ, j]
 *   I_ρ     = the n = min(topK, allowed) largest keys, ordered (key desc, region asc)
 *
 * so ties go to the earlier region, exactly like core's `selectTopK(…, 'lower')` on the CPU.
 * Each of the n passes is a workgroup arg-max over the regions after the previous pick in that
 * order; the last pick is then the threshold, and the selected regions are written ascending as
 * the CSR row of every selection row of ρ (one row when the call is region-aligned, else one per
 * query), the layout the sparse executor reads.
 */

/** Uniform parameter block of the top-k kernel. */
export const REGION_TOP_K_PARAMS = [
  'selSlots', 'queryRegions', 'keyRegions', 'firstRegion',
  'causal', 'includeDiagonal', 'topK', 'stride',
  'rowsPerHead', 'querySeq', 'queryOffset', 'regionSize',
  'aligned', 'tilesX',
] as const;

/** Threads per workgroup of the top-k kernel. */
export const REGION_TOP_K_THREADS = 128;

/** Generates the WGSL of the region top-k kernel. */
export function regionTopKWgsl(): string {
  return /* wgsl */ `
struct Params {
  selSlots: u32, queryRegions: u32, keyRegions: u32, firstRegion: u32,
  causal: u32, includeDiagonal: u32, topK: u32, stride: u32,
  rowsPerHead: u32, querySeq: u32, queryOffset: u32, regionSize: u32,
  aligned: u32, tilesX: u32,
}

const NT: u32 = ${REGION_TOP_K_THREADS}u;
const BIG: f32 = 3.0e38;
const NONE: f32 = -3.4e38;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;

var<workgroup> bestKey: array<f32, ${REGION_TOP_K_THREADS}>;
var<workgroup> bestIndex: array<u32, ${REGION_TOP_K_THREADS}>;

fn keyOf(base: u32, j: u32, own: u32) -> f32 {
  return select(scores[base + j], BIG, P.includeDiagonal == 1u && j == own);
}

@compute @workgroup_size(${REGION_TOP_K_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.selSlots * P.queryRegions) { return; }
  let head0 = linear / P.queryRegions;
  let r = linear % P.queryRegions;
  let own = P.firstRegion + r;
  let allowed = select(P.keyRegions, own + 1u, P.causal == 1u);
  let n = min(P.topK, allowed);
  let base = linear * P.keyRegions;
  var prevKey = 3.4e38;
  var prevIndex = 0u;
  for (var p = 0u; p < n; p++) {
    var key = NONE;
    var index = 0xffffffffu;
    for (var j = lid; j < allowed; j += NT) {
      let kj = keyOf(base, j, own);
      let after = kj < prevKey || (kj == prevKey && j > prevIndex);
      if (after && (kj > key || index == 0xffffffffu)) { key = kj; index = j; }
    }
    bestKey[lid] = key;
    bestIndex[lid] = index;
    workgroupBarrier();
    for (var width = NT / 2u; width > 0u; width = width / 2u) {
      if (lid < width) {
        let ok = bestKey[lid + width];
        let oi = bestIndex[lid + width];
        let mine = bestIndex[lid];
        if (oi != 0xffffffffu && (mine == 0xffffffffu || ok > bestKey[lid] || (ok == bestKey[lid] && oi < mine))) {
          bestKey[lid] = ok;
          bestIndex[lid] = oi;
        }
      }
      workgroupBarrier();
    }
    prevKey = bestKey[0];
    prevIndex = bestIndex[0];
    workgroupBarrier();
  }
  if (lid != 0u) { return; }
  // The selection rows of region r: row r when aligned, else the rows of its queries.
  var rowStart = r;
  var rowEnd = r + 1u;
  if (P.aligned == 0u) {
    rowStart = max(P.queryOffset, own * P.regionSize) - P.queryOffset;
    rowEnd = min(P.querySeq, (own + 1u) * P.regionSize - P.queryOffset);
  }
  for (var row = rowStart; row < rowEnd; row++) {
    let at = head0 * P.rowsPerHead + row;
    let start = at * P.stride;
    var written = 0u;
    for (var j = 0u; j < allowed; j++) {
      let kj = keyOf(base, j, own);
      if (kj > prevKey || (kj == prevKey && j <= prevIndex)) {
        indices[start + written] = j;
        written++;
      }
    }
    bounds[2u * at] = start;
    bounds[2u * at + 1u] = start + written;
  }
}
`;
}
