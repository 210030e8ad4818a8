/**
 * Landmark Attention's block retrieval in WGSL (`positions: 'absolute'`), the ranking half: one
 * thread per (query head, query) row over the landmark scores `candidateScoreWgsl` wrote,
 * exactly the block choice of the CPU `landmarkGroupedAttention`:
 *
 *   p = queryOffset + i,  blocks = ⌊p / (ℓ+1)⌋ earlier (complete) blocks,  L_b = key at b·(ℓ+1) + ℓ
 *   keep = blocks when topK = 0 or blocks ≤ topK, else topK
 *   s_b = scale · q · k_{L_b}   (the tiled kernel)      top-`keep` blocks by s_b (ties toward the lower block index)
 *   row = retrieved blocks ascending, then the query's own block ⌊p / (ℓ+1)⌋   (blocks of ℓ+1 positions)
 *
 * The row is the CPU method's reported selection (`selectionWeighting: 'grouped'`): the grouped
 * softmax reads it. The thread scans its row's scores in block order (vec4 reads; rows padded to
 * a multiple of 4 floats) keeping the best `topK` sorted in private memory, (score descending,
 * index ascending) like the CPU's `topKIndices` — no workgroup memory, no barriers (it was one
 * workgroup per row doing `topK` arg-max passes).
 */
import { memoKernel } from '@sparse-attn/backend-gpu';

import { RETRIEVAL_TOP_K_ROW_THREADS, WORKGROUP_TOP_K_DECLARATIONS, insertPickWgsl, sortedPicksRowWgsl, workgroupTopKWgsl } from './retrieval-top-k-wgsl.js';

/** Uniform parameter block of the landmark top-k kernel. */
export const LANDMARK_TOP_K_PARAMS = [
  'querySeq', 'queryOffset', 'querySlots', 'tilesX',
  'rowStart', 'rowCount', 'span', 'rowVec4s',
  'topK', 'stride', 'pad0', 'pad1',
] as const;

/** Threads per workgroup of the landmark top-k kernel (one query row each). */
export const LANDMARK_TOP_K_THREADS = 64;

/** The params struct, constants and bindings both landmark ranking kernels declare (scores as `element`s). */
function landmarkRankingHeader(threads: number, maxPicks: number, element: 'vec4<f32>' | 'f32'): string {
  return /* wgsl */ `
struct Params {
  querySeq: u32, queryOffset: u32, querySlots: u32, tilesX: u32,
  rowStart: u32, rowCount: u32, span: u32, rowVec4s: u32,
  topK: u32, stride: u32, pad0: u32, pad1: u32,
}

const NT: u32 = ${threads}u;
const MP: u32 = ${Math.max(1, maxPicks)}u;
const NONE: f32 = -3.4e38;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> scores: array<${element}>;
@group(0) @binding(2) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;
`;
}

/**
 * Both landmark ranking kernels' start: row `t` of the dispatch and its geometry, and the rows
 * that keep every earlier block (topK 0, or at most topK of them), written by the threads
 * `first`, `first + step`, … (`lead` writes the bounds), which `return`.
 */
function landmarkRowPrologueWgsl(t: string, first: string, step: string, lead: string): string {
  return /* wgsl */ `  let t = ${t};
  if (t >= P.querySlots * P.rowCount) { return; }
  let querySlot = t / P.rowCount;
  let localRow = t % P.rowCount;
  let i = P.rowStart + localRow;
  let blocks = (P.queryOffset + i) / P.span;
  let row = querySlot * P.querySeq + i;
  let start = row * P.stride;
  if (P.topK == 0u || blocks <= P.topK) {
    // Every earlier block, then the own one.
    for (var j = ${first}; j <= blocks; j += ${step}) { indices[start + j] = j; }
    if (${lead}) {
      bounds[2u * row] = start;
      bounds[2u * row + 1u] = start + blocks + 1u;
    }
    return;
  }`;
}

/**
 * Generates the WGSL of the landmark top-k kernel (`maxPicks` = topK, at least 1). Bindings:
 * 0 params, 1 scores as vec4 `[querySlots][rowCount][rowVec4s]`, 2 bounds, 3 indices.
 */
export const landmarkTopKWgsl = memoKernel((o: { readonly maxPicks: number }): string => {
  return /* wgsl */ `${landmarkRankingHeader(LANDMARK_TOP_K_THREADS, o.maxPicks, 'vec4<f32>')}
@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${landmarkRowPrologueWgsl('(wid.x + wid.y * P.tilesX) * NT + lid', '0u', '1u', 'true')}
  let base = (querySlot * P.rowCount + localRow) * P.rowVec4s;
  // The picks, best first: keys[0 .. kept) descending, equal keys in ascending index order.
  var keys: array<f32, MP>;
  var picked: array<u32, MP>;
  var kept = 0u;
  let n = P.topK;
  let current = blocks;
  for (var c = 0u; c < (blocks + 3u) / 4u; c++) {
    let acc = scores[base + c];
${(['x', 'y', 'z', 'w'] as const).map((e, k) => insertPickWgsl(`acc.${e}`, `4u * c + ${k}u`, k === 0 ? 'true' : 'j < current')).join('\n')}
  }
  // Ascending block order for the CSR row, then the own block.
${sortedPicksRowWgsl('picked', '  ', false, 'blocks')}
}
`;
});

/**
 * {@link landmarkTopKWgsl} with one workgroup per row (same params, bindings and result), for calls
 * of few rows (a decode step's, see `RETRIEVAL_TOP_K_ROWS_MAX`): `workgroupTopKWgsl` ranks the
 * row's landmark scores (read as floats) over 256 threads. The scores and their order are the
 * thread-per-row kernel's, so the picks are exactly its.
 */
export const landmarkTopKRowsWgsl = memoKernel((o: { readonly maxPicks: number }): string => {
  return /* wgsl */ `${landmarkRankingHeader(RETRIEVAL_TOP_K_ROW_THREADS, o.maxPicks, 'f32')}${WORKGROUP_TOP_K_DECLARATIONS}
@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${landmarkRowPrologueWgsl('wid.x + wid.y * P.tilesX', 'lid', 'NT', 'lid == 0u')}
  let base = (querySlot * P.rowCount + localRow) * P.rowVec4s * 4u;
  let n = P.topK;
${workgroupTopKWgsl('0u', 'blocks', '    let acc = scores[base + candidate];')}
  if (lid == 0u) {
    // Ascending block order for the CSR row, then the own block.
${sortedPicksRowWgsl('picks', '    ', false, 'blocks')}
  }
}
`;
});
