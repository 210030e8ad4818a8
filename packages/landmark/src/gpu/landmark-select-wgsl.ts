/**
 * Landmark Attention's block retrieval in WGSL (`positions: 'absolute'`), one workgroup per
 * (query head, query) row, exactly the block choice of the CPU `landmarkGroupedAttention`:
 *
 *   p = queryOffset + i,  blocks = ⌊p / (ℓ+1)⌋ earlier (complete) blocks,  L_b = key at b·(ℓ+1) + ℓ
 *   keep = blocks when topK = 0 or blocks ≤ topK, else topK
 *   s_b = scale · q · k_{L_b}         top-`keep` blocks by s_b (ties toward the lower block index)
 *   row = retrieved blocks ascending, then the query's own block ⌊p / (ℓ+1)⌋   (blocks of ℓ+1 positions)
 *
 * The row is the CPU method's reported selection (`selectionWeighting: 'grouped'`): the grouped
 * softmax kernel ({@link groupedSoftmaxWgsl}) reads it. Landmark scores go to a scratch of
 * `rowCount × maxBlocks` floats per query head (rows are processed `rowCount` at a time), and the
 * top-k is the arg-max-pass selection of backend-gpu's `blockTopKWgsl`.
 */

import { argMaxPickWgsl, everyBlockRowWgsl, paramsStructWgsl, sortPicksWgsl } from './wgsl-snippets.js';

/** Uniform parameter block of the landmark selection kernel. */
export const LANDMARK_SELECT_PARAMS = [
  'querySeq', 'queryOffset', 'querySlots', 'tilesX',
  'rowStart', 'rowCount', 'span', 'blockLength',
  'maxBlocks', 'topK', 'stride', 'groupSize',
  'keySeq', 'scale', 'pad0', 'pad1',
] as const;

/** Threads per workgroup of the landmark selection kernel. */
export const LANDMARK_SELECT_THREADS = 256;

/** Generates the WGSL of the landmark selection kernel (`maxPicks` = topK, at least 1). */
export function landmarkSelectWgsl(o: { readonly headDim: number; readonly maxPicks: number }): string {
  const NT = LANDMARK_SELECT_THREADS;
  return /* wgsl */ `
${paramsStructWgsl(LANDMARK_SELECT_PARAMS)}

const NT: u32 = ${NT}u;
const D: u32 = ${o.headDim}u;
const NONE: f32 = -3.4e38;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;
@group(0) @binding(4) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(5) var<storage, read_write> indices: array<u32>;

var<workgroup> qs: array<f32, ${o.headDim}>;
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
  let kvSlot = querySlot / P.groupSize;
  let blocks = (P.queryOffset + i) / P.span;
  let row = querySlot * P.querySeq + i;
  let start = row * P.stride;
  if (P.topK == 0u || blocks <= P.topK) {
${everyBlockRowWgsl('blocks', '    ')}
  }
  for (var c = lid; c < D; c += NT) { qs[c] = q[(querySlot * P.querySeq + i) * D + c]; }
  workgroupBarrier();
  let base = (querySlot * P.rowCount + localRow) * P.maxBlocks;
  for (var j = lid; j < blocks; j += NT) {
    let kRow = (kvSlot * P.keySeq + j * P.span + P.blockLength) * D;
    var s = 0.0;
    for (var c = 0u; c < D; c++) { s += qs[c] * k[kRow + c]; }
    scores[base + j] = s * P.scale;
  }
  // topK arg-max passes over the blocks after the previous pick in (score desc, index asc) order.
  var prevKey = 3.4e38;
  var prevIndex = 0u;
  for (var p = 0u; p < P.topK; p++) {
    var key = NONE;
    var index = 0xffffffffu;
    for (var j = lid; j < blocks; j += NT) {
      let kj = scores[base + j];
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
