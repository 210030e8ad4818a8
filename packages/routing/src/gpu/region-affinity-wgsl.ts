/**
 * Region-to-region affinity in WGSL (BiFormer's routing graph, spec routing.md §14), per routing
 * head, query region ρ and key region j ≤ ρ (every j when non-causal):
 *
 *   'head':    A[ρ, j] = Q̄_{h,ρ} · K̄_{kv(h),j}                 (one graph per query head h)
 *   'shared':  A[ρ, j] = Σ_{h of the batch} Q̄_{h,ρ} · K̄_{kv(h),j}  (one graph per batch, from the
 *              full channel dimension; every KV head of the batch routes with it)
 *
 * Both are one dot product of width E: E = D per query head, and for 'shared' the concatenation
 * of the batch's query heads' means [Q̄_{h0} | Q̄_{h1} | …] against [K̄_{kv(h0)} | K̄_{kv(h1)} | …]
 * (E = Hq · D). A workgroup computes a 64 query regions × 64 key regions tile of it with
 * backend-gpu's register-tiled micro-tile (`scoreTileWgsl`), so each mean vector is read once per
 * 64 regions instead of once per pair; tiles wholly above the causal diagonal return at once.
 * Accumulation is f32 (fma, channel order); the CPU accumulates in f64 and rounds the affinity to
 * f32 (see the package README for what that means for near-ties).
 * Scores go to a per-chunk scratch `[routing head][queryRegions][keyRegions]`: (S/R)² per head,
 * never S²; entries above the causal diagonal are left unwritten (top-k never reads them).
 */
import { linearWorkgroup, forRows, operandScratchVec4, scoreTileWgsl, tileConstants, type TileShape, zeroScores } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the affinity kernel. */
export const REGION_AFFINITY_PARAMS = [
  'selSlots', 'selSlot0', 'queryRegions', 'keyRegions',
  'firstRegion', 'causal', 'sharedGraph', 'groupSize',
  'queryHeads', 'width', 'rowTiles', 'columnTiles',
  'tilesX', 'pad0', 'pad1', 'pad2',
] as const;

const TILE: TileShape = { rows: 64, chunk: 16 };

/** Regions per side of one affinity tile (workgroup). */
export const REGION_AFFINITY_TILE = TILE.rows;

/** Generates the affinity kernel for head dim D (vec4 loads when D is a multiple of 4). */
export function regionAffinityWgsl(headDim: number): string {
  const vectorized = headDim % 4 === 0;
  const element = vectorized ? 'vec4<f32>' : 'f32';
  const zero = vectorized ? 'vec4<f32>(0.0)' : '0.0';
  // Element index of channel c (a multiple of 4 when vectorized) of mean row `row`.
  const at = (row: string, c: string) => (vectorized ? `${row} * (D / 4u) + ${c} / 4u` : `${row} * D + ${c}`);
  return /* wgsl */ `
${tileConstants(TILE)}
const D: u32 = ${headDim}u;

struct Params {
  selSlots: u32, selSlot0: u32, queryRegions: u32, keyRegions: u32,
  firstRegion: u32, causal: u32, sharedGraph: u32, groupSize: u32,
  queryHeads: u32, width: u32, rowTiles: u32, columnTiles: u32,
  tilesX: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> queryMeans: array<${element}>;
@group(0) @binding(2) var<storage, read> keyMeans: array<${element}>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;

var<workgroup> scratch: array<vec4<f32>, ${operandScratchVec4(TILE)}>;

// Operand e of query region r: channel e % D of query head qHead0 + e / D.
fn aAt(r: u32, e: u32, qHead0: u32) -> ${element} {
  if (r >= P.queryRegions || e >= P.width) { return ${zero}; }
  let head = qHead0 + e / D;
  return queryMeans[${at('(head * P.queryRegions + r)', '(e % D)')}];
}

// Operand e of key region j: channel e % D of the KV head of query head qHead0 + e / D.
fn bAt(j: u32, e: u32, qHead0: u32, reach: u32) -> ${element} {
  if (j >= reach || e >= P.width) { return ${zero}; }
  let kvHead = (qHead0 + e / D) / P.groupSize;
  return keyMeans[${at('(kvHead * P.keyRegions + j)', '(e % D)')}];
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${linearWorkgroup}
  let tx = lid % TC;
  let ty = lid / TC;
  if (linear >= P.selSlots * P.rowTiles * P.columnTiles) { return; }
  let j0 = (linear % P.columnTiles) * BC;
  let r0 = ((linear / P.columnTiles) % P.rowTiles) * BR;
  let head0 = linear / (P.columnTiles * P.rowTiles);
  let head = P.selSlot0 + head0;
  // Shared graph: head is a (batch, KV head) slot and the operand spans every query head of its batch.
  let qHead0 = select(head, (head / (P.queryHeads / P.groupSize)) * P.queryHeads, P.sharedGraph == 1u);
  let lastRow = min(r0 + BR, P.queryRegions) - 1u;
  // Key regions any query region of the tile may route to.
  let reach = select(P.keyRegions, min(P.keyRegions, P.firstRegion + lastRow + 1u), P.causal == 1u);
  if (j0 >= reach) { return; }
${zeroScores('  ')}
${scoreTileWgsl(TILE, 'P.width', (r, e) => `aAt(r0 + (${r}), ${e}, qHead0)`, (c, e) => `bAt(j0 + (${c}), ${e}, qHead0, reach)`, vectorized)}
${forRows(
  (i) => `  {
    let r = r0 + 4u * ty + ${i}u;
    if (r < P.queryRegions) {
      let allowed = select(P.keyRegions, P.firstRegion + r + 1u, P.causal == 1u);
      let base = (head0 * P.queryRegions + r) * P.keyRegions;
      for (var c = 0u; c < 4u; c++) {
        let j = j0 + tx + 16u * c;
        if (j < allowed) { scores[base + j] = s${i}[c]; }
      }
    }
  }`,
)}
}
`;
}
