/**
 * Candidate block scores in WGSL, tiled: one workgroup computes a 64 query rows × 64 candidate
 * blocks tile of dot products with backend-gpu's register micro-tile (`scoreTileWgsl`), so each
 * block vector is read once per 64 rows instead of once per row:
 *
 *   limit_i = ⌊(queryOffset + i) / blockSize⌋,   candidates j = first .. limit_i − 1
 *   s_ij = outScale · Σ_e A(i, e) · B(j, e)
 *     'quest':  A = [q⁺ | q⁻], B = [max_j | min_j]   (= Σ_c q_c ≥ 0 ? q_c·max_jc : q_c·min_jc, Quest's bound)
 *     'dot':    A = q,         B = row `keyOffset + j·keyStride` of the slot's vectors (mean keys, landmark keys)
 *   scores[querySlot][i − rowStart][j] = s_ij     for ranked rows (topK > 0 and more than topK candidates)
 *
 * Query rows are `rowStart .. rowStart + rowCount` of every query slot (query head), so the
 * score scratch is `querySlots × rowCount × blocks` floats, never rows × keys. The workgroup grid
 * is (query slot, 64-row tile, 64-block tile); a tile whose rows have no ranked candidate in its
 * blocks (causally masked, or every-block rows) returns at once, so the causal half costs nothing.
 * Entries outside a row's candidates are not written; the top-k kernels read only candidates.
 * Used by `landmark-retrieval` (`retrievalTopKWgsl` reduces and ranks the scores) and `landmark`
 * (`landmarkTopKWgsl`).
 *
 * Calls of at most {@link CANDIDATE_DECODE_ROWS} rows per query slot (decode steps) take
 * {@link candidateScoreDecodeWgsl} instead (same params, bindings and scores): one thread per
 * (query slot, row, score slot). The tiled kernel gave a decode step's one row a 64-row tile per
 * 64 candidates (one row live), 0.05 ms of GPU time for landmark's selection at 64k MHA.
 */
import { memoKernel, TILE_COLUMNS, dispatchGrid, forRows, linearWorkgroup, operandScratchVec4, scoreTileWgsl, tileConstants, type ChunkEncoder, type TileShape, zeroScores } from '@sparse-attn/backend-gpu';
import type { AttentionDims } from '@sparse-attn/core';
import { paramsStructWgsl } from './wgsl-snippets.js';

/** Uniform parameter block of the candidate scoring kernel. */
export const CANDIDATE_SCORE_PARAMS = [
  'querySeq', 'queryOffset', 'querySlots', 'tilesX',
  'rowStart', 'rowCount', 'rowTiles', 'blockTiles',
  'blocks', 'blockSize', 'first', 'topK',
  'groupSize', 'keyRows', 'keyStride', 'keyOffset',
  'outScale', 'pad0', 'pad1', 'pad2',
] as const;

/** The tile: 64 query rows (256 threads) × 64 candidate blocks. */
export const CANDIDATE_TILE: TileShape = { rows: 64, chunk: 16 };

/** Query rows per tile (the row count of a dispatch is best a multiple of it). */
export const CANDIDATE_TILE_ROWS = CANDIDATE_TILE.rows;

/** What one scoring dispatch covers besides the call's dims: the row range and the candidate geometry (see the kernel). */
export interface CandidateScoreDispatch {
  readonly querySlots: number;
  readonly rowStart: number;
  readonly rowCount: number;
  /** Candidate blocks of the longest row (tiles of 64 along the score row). */
  readonly candidates: number;
  /** Padded row stride of the score scratch. */
  readonly rowFloats: number;
  readonly blockSize: number;
  readonly first: number;
  readonly topK: number;
  /** Rows between the KV slots of the key-side vectors (a chunk's `keyStride` when they are its keys; the block count for pooled vectors). */
  readonly keyRows: number;
  /** Rows between consecutive candidates within a slot. */
  readonly keyStride: number;
  readonly keyOffset: number;
  readonly outScale: number;
}

/**
 * Records one dispatch of the scoring kernel (`scorer`: the pipeline of {@link candidateScorer}'s
 * code and its `decode`) for rows `rowStart .. rowStart + rowCount` of every query slot;
 * `bindings` are the kernel's bindings 1–4 (q, key-side vectors, min vectors or `undefined`, scores).
 */
export function dispatchCandidateScores(encoder: ChunkEncoder, scorer: { readonly pipeline: Parameters<ChunkEncoder['dispatch']>[0]; readonly decode: boolean }, d: AttentionDims, o: CandidateScoreDispatch, bindings: Parameters<ChunkEncoder['dispatch']>[1]): void {
  const { pipeline, decode } = scorer;
  const rowTiles = Math.ceil(o.rowCount / CANDIDATE_TILE_ROWS);
  const blockTiles = Math.ceil(o.candidates / TILE_COLUMNS);
  const [x, y] = dispatchGrid(decode ? Math.ceil((o.querySlots * o.rowCount * o.rowFloats) / CANDIDATE_DECODE_THREADS) : o.querySlots * rowTiles * blockTiles);
  const params = encoder.uniform(
    CANDIDATE_SCORE_PARAMS,
    {
      querySeq: d.querySeq,
      queryOffset: d.queryOffset,
      querySlots: o.querySlots,
      tilesX: x,
      rowStart: o.rowStart,
      rowCount: o.rowCount,
      rowTiles,
      blockTiles,
      blocks: o.rowFloats,
      blockSize: o.blockSize,
      first: o.first,
      topK: o.topK,
      groupSize: d.groupSize,
      keyRows: o.keyRows,
      keyStride: o.keyStride,
      keyOffset: o.keyOffset,
      outScale: o.outScale,
    },
    ['outScale'],
  );
  encoder.dispatch(pipeline, [params, ...bindings], x, y);
}

/** Rows per query slot up to which a dispatch scores with {@link candidateScoreDecodeWgsl} (a decode step's). */
export const CANDIDATE_DECODE_ROWS = 16;

/** Threads per workgroup of {@link candidateScoreDecodeWgsl}. */
export const CANDIDATE_DECODE_THREADS = 256;

/**
 * The scoring kernel for dispatches of at most `rowCount` rows per query slot: its WGSL, and
 * whether it is the decode-shaped one (pass both to {@link dispatchCandidateScores}, which sizes
 * its grid for that kernel).
 */
export function candidateScorer(o: CandidateScoreKernelOptions, rowCount: number): { readonly code: string; readonly decode: boolean } {
  const decode = rowCount <= CANDIDATE_DECODE_ROWS;
  return { code: decode ? candidateScoreDecodeWgsl(o) : candidateScoreWgsl(o), decode };
}

/** What the scoring kernel is specialised on. */
export interface CandidateScoreKernelOptions {
  readonly headDim: number;
  /** 'quest': Quest's bound over max (binding 2) and min (binding 3) vectors; 'dot': q · vector (binding 2). */
  readonly operand: 'quest' | 'dot';
}

/**
 * Generates the WGSL of the tiled scoring kernel. Bindings: 0 params, 1 q `[querySlots][querySeq][D]`,
 * 2 key-side vectors, slot s's row r at `s · keyRows + r` (max for 'quest'), 3 min vectors ('quest' only),
 * 4 scores `[querySlots][rowCount][blocks]`. The KV slot of query slot `s` is `s / groupSize`.
 */
export const candidateScoreWgsl = memoKernel((o: CandidateScoreKernelOptions): string => {
  const quest = o.operand === 'quest';
  const tile = CANDIDATE_TILE;
  return /* wgsl */ `
${tileConstants(tile)}
const D: u32 = ${o.headDim}u;
const E: u32 = ${quest ? 2 * o.headDim : o.headDim}u;

${paramsStructWgsl(CANDIDATE_SCORE_PARAMS, ['outScale'])}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> keyHi: array<f32>;
${quest ? '@group(0) @binding(3) var<storage, read> keyLo: array<f32>;' : ''}
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;

var<workgroup> scratch: array<vec4<f32>, ${operandScratchVec4(tile)}>;

// Operand A: row r of the tile (q row qBase + r·D), channel e; 0 past the live rows or E.
fn aAt(r: u32, e: u32, qBase: u32, liveRows: u32) -> f32 {
  if (r >= liveRows || e >= E) { return 0.0; }
${quest ? `  if (e < D) { return max(q[qBase + r * D + e], 0.0); }
  return min(q[qBase + r * D + e - D], 0.0);` : '  return q[qBase + r * D + e];'}
}

// Operand B: candidate block block0 + c (vector row keyBase + keyOffset + j·keyStride), channel e.
fn bAt(c: u32, e: u32, keyBase: u32, block0: u32, visible: u32) -> f32 {
  let j = block0 + c;
  if (j >= visible || e >= E) { return 0.0; }
  let at = (keyBase + P.keyOffset + j * P.keyStride) * D;
${quest ? `  if (e < D) { return keyHi[at + e]; }
  return keyLo[at + e - D];` : '  return keyHi[at + e];'}
}

// Candidates of local row r end before limit(r); a row is ranked when it has more than topK of them.
fn limitOf(localRow: u32) -> u32 {
  return (P.queryOffset + P.rowStart + localRow) / P.blockSize;
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${linearWorkgroup}
  if (linear >= P.querySlots * P.rowTiles * P.blockTiles) { return; }
  let blockTile = linear % P.blockTiles;
  let rowTile = (linear / P.blockTiles) % P.rowTiles;
  let querySlot = linear / (P.blockTiles * P.rowTiles);
  let local0 = rowTile * BR;
  let liveRows = min(BR, P.rowCount - local0);
  // The tile's last row has the most candidates (limits grow with the row).
  let lastLimit = limitOf(local0 + liveRows - 1u);
  let block0 = blockTile * BC;
  if (P.topK == 0u || lastLimit <= P.first + P.topK || block0 >= lastLimit) { return; }
  let visible = min(lastLimit, P.blocks);
  let qBase = (querySlot * P.querySeq + P.rowStart + local0) * D;
  let keyBase = (querySlot / P.groupSize) * P.keyRows;
  let tx = lid % TC;
  let ty = lid / TC;
${zeroScores('  ')}
${scoreTileWgsl(tile, 'E', (r, e) => `aAt(${r}, ${e}, qBase, liveRows)`, (c, e) => `bAt(${c}, ${e}, keyBase, block0, visible)`)}
  let js = vec4<u32>(block0 + tx, block0 + tx + 16u, block0 + tx + 32u, block0 + tx + 48u);
${forRows((i) => `  {
    let r = 4u * ty + ${i}u;
    let limit = limitOf(local0 + r);
    if (r < liveRows && limit > P.first + P.topK) {
      let base = (querySlot * P.rowCount + local0 + r) * P.blocks;
${['x', 'y', 'z', 'w'].map((c) => `      if (js.${c} >= P.first && js.${c} < limit) { scores[base + js.${c}] = s${i}.${c} * P.outScale; }`).join('\n')}
    }
  }`)}
}
`;
});

/**
 * The decode-shaped scoring kernel: one thread per (query slot, row of the range, j < the score
 * rows' stride) writes s_ij for ranked rows' candidates, exactly where the tiled kernel writes
 * (same params and bindings); q and the vectors load as vec4 when D is a multiple of 4.
 */
export const candidateScoreDecodeWgsl = memoKernel((o: CandidateScoreKernelOptions): string => {
  const quest = o.operand === 'quest';
  const vec = o.headDim % 4 === 0;
  const type = vec ? 'vec4<f32>' : 'f32';
  const zero = vec ? 'vec4<f32>(0.0)' : '0.0';
  return /* wgsl */ `
const W: u32 = ${vec ? o.headDim / 4 : o.headDim}u;
const NT: u32 = ${CANDIDATE_DECODE_THREADS}u;

${paramsStructWgsl(CANDIDATE_SCORE_PARAMS, ['outScale'])}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<${type}>;
@group(0) @binding(2) var<storage, read> keyHi: array<${type}>;
${quest ? `@group(0) @binding(3) var<storage, read> keyLo: array<${type}>;` : ''}
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  // j runs over the scores' row stride (P.blocks ≥ every row's candidate count).
  let id = (wid.x + wid.y * P.tilesX) * NT + lid;
  if (id >= P.querySlots * P.rowCount * P.blocks) { return; }
  let j = id % P.blocks;
  let localRow = (id / P.blocks) % P.rowCount;
  let querySlot = id / (P.blocks * P.rowCount);
  let limit = (P.queryOffset + P.rowStart + localRow) / P.blockSize;
  if (P.topK == 0u || limit <= P.first + P.topK || j < P.first || j >= limit) { return; }
  let qBase = (querySlot * P.querySeq + P.rowStart + localRow) * W;
  let at = ((querySlot / P.groupSize) * P.keyRows + P.keyOffset + j * P.keyStride) * W;
  var acc = ${zero};
  for (var e = 0u; e < W; e++) {
    let x = q[qBase + e];
${quest ? `    acc += max(x, ${zero}) * keyHi[at + e] + min(x, ${zero}) * keyLo[at + e];` : '    acc += x * keyHi[at + e];'}
  }
  scores[(querySlot * P.rowCount + localRow) * P.blocks + j] = ${vec ? 'dot(acc, vec4<f32>(1.0))' : 'acc'} * P.outScale;
}
`;
});
