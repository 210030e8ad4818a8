/**
 * Landmark Attention's block retrieval in WGSL (`positions: 'absolute'`), the ranking half: one
 * workgroup per (query head, query) row over the landmark scores `candidateScoreWgsl` wrote,
 * exactly the block choice of the CPU `landmarkGroupedAttention`:
 *
 *   p = queryOffset + i,  blocks = ⌊p / (ℓ+1)⌋ earlier (complete) blocks,  L_b = key at b·(ℓ+1) + ℓ
 *   keep = blocks when topK = 0 or blocks ≤ topK, else topK
 *   s_b = scale · q · k_{L_b}   (the tiled kernel)      top-`keep` blocks by s_b (ties toward the lower block index)
 *   row = retrieved blocks ascending, then the query's own block ⌊p / (ℓ+1)⌋   (blocks of ℓ+1 positions)
 *
 * The row is the CPU method's reported selection (`selectionWeighting: 'grouped'`): the grouped
 * softmax kernel ({@link groupedSoftmaxWgsl}) reads it. The top-k is the arg-max-pass selection of
 * backend-gpu's `blockTopKWgsl`; scores of blocks below `RETRIEVAL_TOP_K_CACHE` are staged in
 * workgroup memory once (each thread owns the blocks j ≡ lid mod NT, so no barrier guards them).
 */

import { RETRIEVAL_TOP_K_CACHE } from './retrieval-top-k-wgsl.js';
import { argMaxPickWgsl, everyBlockRowWgsl, paramsStructWgsl, sortPicksWgsl } from './wgsl-snippets.js';

/** Uniform parameter block of the landmark top-k kernel. */
export const LANDMARK_TOP_K_PARAMS = [
  'querySeq', 'queryOffset', 'querySlots', 'tilesX',
  'rowStart', 'rowCount', 'span', 'maxBlocks',
  'topK', 'stride', 'pad0', 'pad1',
] as const;

/** Threads per workgroup of the landmark top-k kernel (one query row each). */
export const LANDMARK_TOP_K_THREADS = 128;

/**
 * Generates the WGSL of the landmark top-k kernel (`maxPicks` = topK, at least 1). Bindings:
 * 0 params, 1 scores `[querySlots][rowCount][maxBlocks]`, 2 bounds, 3 indices.
 */
export function landmarkTopKWgsl(o: { readonly maxPicks: number }): string {
  const NT = LANDMARK_TOP_K_THREADS;
  return /* wgsl */ `
${paramsStructWgsl(LANDMARK_TOP_K_PARAMS)}

const NT: u32 = ${NT}u;
const CACHE: u32 = ${RETRIEVAL_TOP_K_CACHE}u;
const NONE: f32 = -3.4e38;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;

var<workgroup> cache: array<f32, ${RETRIEVAL_TOP_K_CACHE}>;
var<workgroup> bestKey: array<f32, ${NT}>;
var<workgroup> bestIndex: array<u32, ${NT}>;
var<workgroup> picks: array<u32, ${Math.max(1, o.maxPicks)}>;

@compute @workgroup_size(${NT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.querySlots * P.rowCount) { return; }
  let querySlot = linear / P.rowCount;
  let localRow = linear % P.rowCount;
  let i = P.rowStart + localRow;
  let blocks = (P.queryOffset + i) / P.span;
  let row = querySlot * P.querySeq + i;
  let start = row * P.stride;
  if (P.topK == 0u || blocks <= P.topK) {
${everyBlockRowWgsl('blocks', '    ')}
  }
  let base = (querySlot * P.rowCount + localRow) * P.maxBlocks;
  for (var j = lid; j < min(blocks, CACHE); j += NT) { cache[j] = scores[base + j]; }
  // topK arg-max passes over the blocks after the previous pick in (score desc, index asc) order.
  var prevKey = 3.4e38;
  var prevIndex = 0u;
  for (var p = 0u; p < P.topK; p++) {
    var key = NONE;
    var index = 0xffffffffu;
    for (var j = lid; j < blocks; j += NT) {
      var kj: f32;
      if (j < CACHE) { kj = cache[j]; } else { kj = scores[base + j]; }
      let after = kj < prevKey || (kj == prevKey && j > prevIndex);
      if (after && kj > key) { key = kj; index = j; }
    }
${argMaxPickWgsl('bestKey', 'bestIndex', '    ')}
  }
  if (lid == 0u) {
${sortPicksWgsl('    ')}
    for (var a = 0u; a < P.topK; a++) { indices[start + a] = picks[a]; }
    indices[start + P.topK] = blocks;
    bounds[2u * row] = start;
    bounds[2u * row + 1u] = start + P.topK + 1u;
  }
}
`;
}
