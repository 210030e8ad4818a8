/**
 * Top-k key regions per query region in WGSL with one thread per (routing head, query region ρ)
 * and the k best kept in registers (BiFormer's routing index I_ρ, spec routing.md §14):
 *
 *   allowed = causal ? first + ρ + 1 : keyRegions      own = first + ρ
 *   key(j)  = (includeDiagonal and j = own) ? +BIG : A[ρ, j]
 *   I_ρ     = the n = min(topK, allowed) largest keys, ordered (key desc, region asc)
 *
 * The thread scans j ascending and inserts a candidate only when strictly greater than the list's
 * last entry (and shifts only past strictly smaller entries), so ties go to the earlier region,
 * exactly like core's `selectTopK(…, 'lower')` on the CPU. The picks are then sorted ascending and
 * written as the CSR row of every selection row of ρ (one row when the call is region-aligned, else
 * one per query), the layout the sparse executor reads. One read of each affinity, no barriers,
 * no serial writer: the cost is the (S/R)² / 2 causal scores per head, read once.
 *
 * The list length K = stride = min(topK, keyRegions) is a compile-time constant; `gpu-biformer.ts`
 * uses this kernel for K ≤ {@link REGION_TOP_K_ROWS_MAX} and the workgroup kernel
 * (`region-top-k-wgsl.ts`) above that, where a register list would spill.
 */
import { insertTopR } from './wgsl-snippets.js';

/** Uniform parameter block of the register top-k kernel (same fields as the workgroup kernel's). */
export const REGION_TOP_K_ROWS_PARAMS = [
  'selSlots', 'queryRegions', 'keyRegions', 'firstRegion',
  'causal', 'includeDiagonal', 'topK', 'stride',
  'rowsPerHead', 'querySeq', 'queryOffset', 'regionSize',
  'aligned', 'tilesX',
] as const;

/** Threads per workgroup of the register top-k kernel (one query region each). */
export const REGION_TOP_K_ROWS_THREADS = 64;

/** Largest k kept in registers; larger k use the workgroup arg-max kernel. */
export const REGION_TOP_K_ROWS_MAX = 16;

/** Generates the register top-k kernel for lists of `k` regions (k = the call's stride). */
export function regionTopKRowsWgsl(k: number): string {
  if (!(Number.isInteger(k) && k >= 1 && k <= REGION_TOP_K_ROWS_MAX)) throw new RangeError(`register top-k needs 1 ≤ k ≤ ${REGION_TOP_K_ROWS_MAX}, got ${k}`);
  return /* wgsl */ `
struct Params {
  selSlots: u32, queryRegions: u32, keyRegions: u32, firstRegion: u32,
  causal: u32, includeDiagonal: u32, topK: u32, stride: u32,
  rowsPerHead: u32, querySeq: u32, queryOffset: u32, regionSize: u32,
  aligned: u32, tilesX: u32,
}

const R: u32 = ${k}u;
const BIG: f32 = 3.0e38;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;

@compute @workgroup_size(${REGION_TOP_K_ROWS_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * P.tilesX) * ${REGION_TOP_K_ROWS_THREADS}u + lid;
  if (id >= P.selSlots * P.queryRegions) { return; }
  let head0 = id / P.queryRegions;
  let r = id % P.queryRegions;
  let own = P.firstRegion + r;
  let allowed = select(P.keyRegions, own + 1u, P.causal == 1u);
  let base = id * P.keyRegions;
  var bestValue: array<f32, R>;
  var best: array<u32, R>;
  var filled = 0u;
  for (var k = 0u; k < allowed; k++) {
    let s = select(scores[base + k], BIG, P.includeDiagonal == 1u && k == own);
${insertTopR('    ')}
  }
  // n = min(topK, allowed) = filled (R = min(topK, keyRegions) and allowed ≤ keyRegions): ascending.
  for (var a = 1u; a < filled; a++) {
    let x = best[a];
    var b = a;
    while (b > 0u && best[b - 1u] > x) {
      best[b] = best[b - 1u];
      b--;
    }
    best[b] = x;
  }
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
    for (var a = 0u; a < filled; a++) { indices[start + a] = best[a]; }
    bounds[2u * at] = start;
    bounds[2u * at + 1u] = start + filled;
  }
}
`;
}
