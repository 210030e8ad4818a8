/**
 * Kernel: stage 1 of the hierarchical indexer on the GPU, register-tiled (spec §13; the tiled twin
 * of the block loop of `hierarchical-indexer.ts`):
 *
 *   group query   q̄_t = Σ_{h ∈ group} q_t^h                  (float32, heads in order, as the CPU)
 *   block score   Î_t[j] = q̄_t · mean(K_j)                   for the complete blocks j visible to t
 *
 * One workgroup per (KV slot, tile of 64 consecutive queries of a row range): the tile's complete
 * blocks are scored 64 at a time through backend-gpu's register micro-tile (`scoreTileWgsl`), so a
 * pooled block is read once per 64 queries instead of once per query, and written to
 * `scores[slot][row of the range][block]`. Entries of blocks a row cannot see are left as they
 * are; the selection kernel (`indexer-select-wgsl.ts`) never reads them (it forces block 0 and the
 * incomplete blocks, and skips rows with t + 1 ≤ K, which a tile made only of such rows skips too).
 */
import { forRows, linearWorkgroup, operandScratchVec4, scoreTileWgsl, tileOperands, tileConstants, type TileOperands, type TileShape, zeroScores, memoKernel } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the stage-1 kernel (u32 fields). */
export const INDEXER_SCORE_PARAMS = [
  'querySeq', 'queryOffset', 'slots', 'tilesX',
  'rowStart', 'rangeRows', 'rowTiles', 'pooled',
  'blockSize', 'blocks', 'topK', 'pad0',
] as const;

/** Compile-time shape of the stage-1 kernel. */
export interface IndexerScoreKernelOptions {
  readonly headDim: number;
  readonly groupSize: number;
  readonly tile: TileShape;
}

/** Bytes of workgroup memory the kernel declares. */
export function indexerScoreWorkgroupBytes(o: IndexerScoreKernelOptions): number {
  return 16 * operandScratchVec4(o.tile);
}

/**
 * WGSL `groupQuery(row, e)`: the group query Σ_h q of query row `row` (head 0 of the group; the
 * group's heads are `P.querySeq` rows apart in the `q` binding), channel `e` (channels e … e + 3
 * when vectorized), summed in head order from 0 like the CPU. Shared by the indexer's stage-1,
 * candidate-score and direct-score kernels; needs `D`, `G`, `P.querySeq` and `q`.
 */
export function groupQueryWgsl(o: TileOperands): string {
  return /* wgsl */ `fn groupQuery(row: u32, e: u32) -> ${o.element} {
  var s = ${o.zero};
  for (var g = 0u; g < G; g++) { s += q[${o.at('row + g * P.querySeq', 'e', 'D')}]; }
  return s;
}`;
}

/** Generates the stage-1 kernel. */
export const indexerScoreWgsl = memoKernel(function indexerScoreWgsl(o: IndexerScoreKernelOptions): string {
  // vec4 operand loads where the head dim allows (the micro-tile's products are the same either way).
  const operands = tileOperands(o.tile, o.headDim);
  const { vectorized, element, zero, at } = operands;
  return /* wgsl */ `
${tileConstants(o.tile)}
const D: u32 = ${o.headDim}u;
const G: u32 = ${o.groupSize}u;

struct Params {
  querySeq: u32, queryOffset: u32, slots: u32, tilesX: u32,
  rowStart: u32, rangeRows: u32, rowTiles: u32, pooled: u32,
  blockSize: u32, blocks: u32, topK: u32, pad0: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<${element}>;
@group(0) @binding(2) var<storage, read> means: array<${element}>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;

var<workgroup> scratch: array<vec4<f32>, ${operandScratchVec4(o.tile)}>;

${groupQueryWgsl(operands)}

/** Operand A: the group query of tile row r. */
fn aAt(r: u32, e: u32, qRow0: u32, tileRows: u32) -> ${element} {
  if (r >= tileRows || e >= D) { return ${zero}; }
  return groupQuery(qRow0 + r, e);
}

/** Operand B: the mean key of block j0 + c, 0 past the tile's complete blocks. */
fn bAt(c: u32, e: u32, kRow0: u32, j0: u32, completeMax: u32) -> ${element} {
  let j = j0 + c;
  if (j >= completeMax || e >= D) { return ${zero}; }
  return means[${at('kRow0 + j', 'e', 'D')}];
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${linearWorkgroup}
  let tx = lid % TC;
  let ty = lid / TC;
  if (linear >= P.slots * P.rowTiles) { return; }
  let slot = linear / P.rowTiles;
  let r0 = (linear % P.rowTiles) * BR;
  let tileRows = min(BR, P.rangeRows - r0);
  let i0 = P.rowStart + r0;
  let lastT = P.queryOffset + i0 + tileRows - 1u;
  let completeMax = min(P.pooled, (lastT + 1u) / P.blockSize);
  // Rows with t + 1 ≤ K keep every key; a tile of only such rows (or without complete blocks) has nothing to score.
  if (lastT + 1u <= P.topK || completeMax == 0u) { return; }
  let qRow0 = slot * G * P.querySeq + i0;
  let kRow0 = slot * P.pooled;
  for (var j0 = 0u; j0 < completeMax; j0 += BC) {
${zeroScores('    ')}
${scoreTileWgsl(o.tile, 'D', (r, e) => `aAt(${r}, ${e}, qRow0, tileRows)`, (c, e) => `bAt(${c}, ${e}, kRow0, j0, completeMax)`, vectorized)}
${forRows((i) => `    if (4u * ty + ${i}u < tileRows) {
      let at = (slot * P.rangeRows + r0 + 4u * ty + ${i}u) * P.blocks + j0;
${[0, 1, 2, 3].map((c) => `      if (j0 + tx + ${16 * c}u < completeMax) { scores[at + tx + ${16 * c}u] = s${i}[${c}]; }`).join('\n')}
    }`)}
  }
}
`;
});
