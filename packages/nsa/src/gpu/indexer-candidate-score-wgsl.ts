/**
 * Kernel: the hierarchical indexer's stage 2 scored key-block-major (spec §13; the block-major
 * twin of the token loop of `indexer-select-wgsl.ts`):
 *
 *   score   Ŝ_t[u] = q̄_t · k_{b·B + j}      for every row t that kept block b as its entry e,
 *                                            u = e · B + j (the fused kernel's candidate order)
 *
 * The rows' kept blocks (the `'pick'` pass) are turned into one list per (KV slot, block) by
 * backend-gpu's list passes (`recordBlockLists`); one workgroup takes a tile of up to 64 of a
 * list's (row, entry) items and scores their group queries against the block's keys 64 at a time
 * on the register micro-tile (`scoreTileWgsl`), so each kept block is read once per 64 rows that
 * kept it instead of once per row. Scores are written as order-preserving u32 keys to
 * `candKeys[(row · maxKept + e) · B + j]` for the `'select'` pass's top-K; candidates past the
 * row's position (in its current block) are written too and never read. Key t of KV slot s is row
 * `s · keyStride + t` of the chunk's k (backend-gpu's `chunkKeyStride`); `keySeq` bounds the block.
 */
import { SORTABLE_WGSL } from './radix-top-k-wgsl.js';
import { groupQueryWgsl } from './indexer-score-tile-wgsl.js';
import { forRows, linearWorkgroup, listTileWgsl, memoKernel, operandScratchVec4, scoreTileWgsl, tileOperands, tileConstants, zeroScores, type TileShape } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the candidate-score kernel (u32 fields; the list fields come from `recordBlockLists`). */
export const INDEXER_CANDIDATE_PARAMS = [
  'lists', 'itemsPerTile', 'stride', 'rangeRows',
  'slotFirst', 'blocks', 'tilesX', 'queryStart',
  'querySeq', 'keySeq', 'blockSize', 'keyStride',
] as const;

/** Compile-time shape of the candidate-score kernel. */
export interface IndexerCandidateKernelOptions {
  readonly headDim: number;
  readonly groupSize: number;
  readonly tile: TileShape;
}

/** Bytes of workgroup memory the kernel declares. */
export function indexerCandidateWorkgroupBytes(o: IndexerCandidateKernelOptions): number {
  return 16 * operandScratchVec4(o.tile) + 8 * o.tile.rows + 4;
}

/** Generates the candidate-score kernel. */
export const indexerCandidateScoreWgsl = memoKernel(function indexerCandidateScoreWgsl(o: IndexerCandidateKernelOptions): string {
  // vec4 operand loads where the head dim allows (the micro-tile's products are the same either way).
  const operands = tileOperands(o.tile, o.headDim);
  const { vectorized, element, zero, at } = operands;
  return /* wgsl */ `
${tileConstants(o.tile)}
const D: u32 = ${o.headDim}u;
const G: u32 = ${o.groupSize}u;

struct Params {
  lists: u32, itemsPerTile: u32, stride: u32, rangeRows: u32,
  slotFirst: u32, blocks: u32, tilesX: u32, queryStart: u32,
  querySeq: u32, keySeq: u32, blockSize: u32, keyStride: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<${element}>;
@group(0) @binding(2) var<storage, read> k: array<${element}>;
@group(0) @binding(3) var<storage, read> listMeta: array<u32>;
@group(0) @binding(4) var<storage, read> items: array<u32>;
@group(0) @binding(5) var<storage, read_write> candKeys: array<u32>;

var<workgroup> scratch: array<vec4<f32>, ${operandScratchVec4(o.tile)}>;
// Per tile row: its first query row (head 0 of the group), INVALID when idle; where its scores go.
var<workgroup> rowQ: array<u32, ${o.tile.rows}>;
var<workgroup> rowOut: array<u32, ${o.tile.rows}>;
var<workgroup> wgList: u32;

${SORTABLE_WGSL}

${groupQueryWgsl(operands)}

/** Operand A: the group query of tile row r. */
fn aAt(r: u32, e: u32) -> ${element} {
  let row = rowQ[r];
  if (row == INVALID || e >= D) { return ${zero}; }
  return groupQuery(row, e);
}

/** Operand B: key c of the tile starting at key row kRow, 0 past the block's end. */
fn bAt(c: u32, e: u32, kRow: u32, kEnd: u32) -> ${element} {
  let key = kRow + c;
  if (key >= kEnd || e >= D) { return ${zero}; }
  return k[${at('key', 'e', 'D')}];
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${linearWorkgroup}
  let tx = lid % TC;
  let ty = lid / TC;
${listTileWgsl('list')}
  let slot = P.slotFirst + list / P.blocks;
  let block = list % P.blocks;
  if (lid < BR) {
    rowQ[lid] = INVALID;
    rowOut[lid] = INVALID;
    if (lid < count) {
      let item = items[first + lid];
      let rowLocal = item / P.stride;
      rowQ[lid] = slot * G * P.querySeq + P.queryStart + rowLocal % P.rangeRows;
      rowOut[lid] = item * P.blockSize;
    }
  }
  workgroupBarrier();
  let blockStart = block * P.blockSize;
  let blockKeys = min(P.blockSize, P.keySeq - blockStart);
  let kRow0 = slot * P.keyStride + blockStart;
  for (var k0 = 0u; k0 < blockKeys; k0 += BC) {
${zeroScores('    ')}
${scoreTileWgsl(o.tile, 'D', (r, e) => `aAt(${r}, ${e})`, (c, e) => `bAt(${c}, ${e}, kRow0 + k0, kRow0 + blockKeys)`, vectorized)}
${forRows((i) => `    {
      let out = rowOut[4u * ty + ${i}u];
      if (out != INVALID) {
${[0, 1, 2, 3].map((c) => `        if (k0 + tx + ${16 * c}u < blockKeys) { candKeys[out + k0 + tx + ${16 * c}u] = sortable(s${i}[${c}]); }`).join('\n')}
      }
    }`)}
  }
}
`;
});
