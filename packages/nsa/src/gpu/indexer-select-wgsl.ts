/**
 * Kernel: the hierarchical (HISA-style) token indexer's two-stage search on the GPU (spec §13;
 * the WGSL twin of `hierarchical-indexer.ts`).
 *
 *   group query     q̄_t = Σ_{h ∈ group} q_t^h                      (float32, heads in order, as the CPU)
 *   stage 1 (block) Î_t[j] = q̄_t · mean(K_j) for complete blocks j; block 0 and the blocks
 *                   from the first incomplete one to IC forced (BIG); keep the top-c
 *   stage 2 (token) S_t = top-K { q̄_t · k_s : s ≤ t in the kept blocks },  ties toward the later token
 *   short rows      t + 1 ≤ K: every key 0..t
 *
 * Stage 1's scores come from the tiled kernel (`indexer-score-tile-wgsl.ts`, one row range at a
 * time; `indexer-direct-score-wgsl.ts` for calls of few rows). Two passes, one workgroup per
 * (KV slot, query) row of the range each: `'pick'` reads the row's block scores, forces block 0
 * and the incomplete blocks and keeps the top-c; the kept blocks' tokens are scored between the
 * passes (`indexer-candidate-score-wgsl.ts`, `indexer-direct-score-wgsl.ts`); `'select'` keeps
 * the top-K of those scores and writes the rows. Both top-k steps are `radix-top-k-wgsl.ts` over
 * order-preserving u32 keys: the k-th
 * largest key found 4 bits per round from 16-bin histograms, then every key above it and, of the
 * keys equal to it, the latest ones — the CPU's `TopKSelector` set — written in ascending order
 * by all threads (each its own run of positions at an offset summed from the runs before it).
 * The candidate scores take c · B u32 per row of a range; nothing of size rows × S exists.
 */
import { memoKernel } from '@sparse-attn/backend-gpu';
import { RADIX_TOP_K_WORKGROUP, RADIX_TOP_K_WORKGROUP_BYTES, radixTopKWgsl, SORTABLE_WGSL } from './radix-top-k-wgsl.js';

/** Uniform parameter block of the indexer kernel (u32 fields). */
export const INDEXER_SELECT_PARAMS = [
  'querySeq', 'queryOffset', 'slots', 'tilesX',
  'blockSize', 'pooled', 'candidateBlocks', 'topK',
  'stride', 'keySeq', 'rowStart', 'rangeRows',
  'blocks', 'pad0', 'pad1', 'pad2',
] as const;

/** Threads per workgroup of the indexer kernel. */
export const INDEXER_SELECT_THREADS = 128;

/** Compile-time shape of the indexer kernel. */
export interface IndexerSelectKernelOptions {
  readonly headDim: number;
  readonly groupSize: number;
  /** Blocks of the call, ceil(keySeq / B). */
  readonly maxBlocks: number;
  /** Most kept blocks, min(c, maxBlocks). */
  readonly maxKept: number;
  /** Most stage-2 candidates, maxKept · B. */
  readonly maxCandidates: number;
  /**
   * Also write each row's tokens as block rows for the key-block executor (bindings 6–8): the kept
   * blocks holding at least one picked token, ascending, at `row · maxKept` (`blockBounds` like
   * `bounds`), and per entry ⌈B / 32⌉ mask words of its picked tokens (`blockMasks`). Short rows
   * (t + 1 ≤ K) get blocks 0 … ⌊t / B⌋ with every bit set (the executor cuts them causally).
   */
  readonly blockRows?: { readonly blockSize: number };
  /**
   * - `'pick'`: stage 1; writes the row's kept blocks, ascending, as CSR rows of the row range
   *   (`candBounds` at binding 9, `candIndices` at 10, `maxKept` per row, row = slot · rangeRows +
   *   range row; rows with t + 1 ≤ K get none);
   * - `'select'`: stage 2's top-K from the candidates' sortable scores (`candKeys`, binding 11,
   *   `maxKept · B` per row, candidate u = entry · B + key of the entry's block), then the rows
   *   (`bounds`, `indices`, and the block rows where asked for).
   */
  readonly phase: 'pick' | 'select';
}

/** u32 mask words per block entry of the block rows. */
export function indexerMaskWords(blockSize: number): number {
  return Math.ceil(blockSize / 32);
}

/** Bytes of workgroup memory the kernel declares. */
export function indexerSelectWorkgroupBytes(o: IndexerSelectKernelOptions): number {
  const blockRows = o.blockRows ? Math.max(1, o.maxKept) * indexerMaskWords(o.blockRows.blockSize) : 0;
  const phase = o.phase === 'pick' ? Math.max(1, o.maxBlocks) : blockRows + Math.max(1, o.maxCandidates) + 1;
  return 4 * (phase + INDEXER_SELECT_THREADS + Math.max(1, o.maxKept)) + RADIX_TOP_K_WORKGROUP_BYTES;
}

/** Generates the indexer kernel. */
export const indexerSelectWgsl = memoKernel(function indexerSelectWgsl(o: IndexerSelectKernelOptions): string {
  const phase = o.phase;
  const W = o.blockRows ? indexerMaskWords(o.blockRows.blockSize) : 0;
  const blockRows = o.blockRows !== undefined;
  return /* wgsl */ `
const NT: u32 = ${INDEXER_SELECT_THREADS}u;
const BIG: f32 = 3.0e38;

struct Params {
  querySeq: u32, queryOffset: u32, slots: u32, tilesX: u32,
  blockSize: u32, pooled: u32, candidateBlocks: u32, topK: u32,
  stride: u32, keySeq: u32, rowStart: u32, rangeRows: u32,
  blocks: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
${phase === 'pick' ? '@group(0) @binding(3) var<storage, read> blockScores: array<f32>;' : ''}
${phase === 'select' ? `@group(0) @binding(4) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(5) var<storage, read_write> indices: array<u32>;` : ''}
${phase === 'pick' ? `@group(0) @binding(9) var<storage, read_write> candBounds: array<u32>;
@group(0) @binding(10) var<storage, read_write> candIndices: array<u32>;` : ''}
${phase === 'select' ? `@group(0) @binding(9) var<storage, read> candBounds: array<u32>;
@group(0) @binding(10) var<storage, read> candIndices: array<u32>;
@group(0) @binding(11) var<storage, read> candKeys: array<u32>;
var<workgroup> wgKept: u32;` : ''}
const ROW_KEPT: u32 = ${Math.max(1, o.maxKept)}u;
${blockRows && phase === 'select' ? `@group(0) @binding(6) var<storage, read_write> blockBounds: array<u32>;
@group(0) @binding(7) var<storage, read_write> blockIndices: array<u32>;
@group(0) @binding(8) var<storage, read_write> blockMasks: array<u32>;
const W: u32 = ${W}u;
const KEPT: u32 = ${Math.max(1, o.maxKept)}u;
var<workgroup> maskAcc: array<atomic<u32>, ${Math.max(1, o.maxKept) * W}>;` : ''}

${phase === 'pick' ? `var<workgroup> blockKey: array<u32, ${Math.max(1, o.maxBlocks)}>;` : ''}
${phase === 'select' ? `var<workgroup> tokenKey: array<u32, ${Math.max(1, o.maxCandidates)}>;` : ''}
var<workgroup> runs: array<u32, ${INDEXER_SELECT_THREADS}>;
var<workgroup> picks: array<u32, ${Math.max(1, o.maxKept)}>;
${RADIX_TOP_K_WORKGROUP}

${SORTABLE_WGSL}

/** Keys of kept candidate u (candidates enumerate the kept blocks' tokens in ascending order). */
fn tokenOf(u: u32) -> u32 {
  return picks[u / P.blockSize] * P.blockSize + u % P.blockSize;
}

@compute @workgroup_size(${INDEXER_SELECT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.rangeRows) { return; }
  let kvSlot = linear / P.rangeRows;
  let rangeRow = linear % P.rangeRows;
  let i = P.rowStart + rangeRow;
  let row = kvSlot * P.querySeq + i;
  let t = P.queryOffset + i;
  let start = row * P.stride;
  let rowLocal = kvSlot * P.rangeRows + rangeRow;
  if (t + 1u <= P.topK) {${phase === 'pick' ? `
    // Every key is attended: no candidates.
    if (lid == 0u) {
      candBounds[2u * rowLocal] = rowLocal * ROW_KEPT;
      candBounds[2u * rowLocal + 1u] = rowLocal * ROW_KEPT;
    }
    return;
  }` : `
    for (var a = lid; a <= t; a += NT) { indices[start + a] = a; }
    if (lid == 0u) {
      bounds[2u * row] = start;
      bounds[2u * row + 1u] = start + t + 1u;
    }${blockRows ? `
    // Every block up to the current one, all bits set.
    let shortBlocks = t / P.blockSize + 1u;
    for (var e = lid; e < shortBlocks * W; e += NT) {
      let rest = P.blockSize - min(P.blockSize, 32u * (e % W));
      blockMasks[(row * KEPT + e / W) * W + e % W] = select((1u << rest) - 1u, 0xffffffffu, rest >= 32u);
      if (e % W == 0u) { blockIndices[row * KEPT + e / W] = e / W; }
    }
    if (lid == 0u) {
      blockBounds[2u * row] = row * KEPT;
      blockBounds[2u * row + 1u] = row * KEPT + shortBlocks;
    }` : ''}
    return;
  }`}
  let bs = P.blockSize;
  let current = t / bs;
${phase === 'select' ? `  // The kept blocks from the pick pass.
  if (lid == 0u) { wgKept = candBounds[2u * rowLocal + 1u] - candBounds[2u * rowLocal]; }
  let n = workgroupUniformLoad(&wgKept);
  for (var e = lid; e < n; e += NT) { picks[e] = candIndices[rowLocal * ROW_KEPT + e]; }
  workgroupBarrier();` : `
  // Stage 1 (scored by the tiled kernel): block 0 and the incomplete tail up to IC forced.
  let count = current + 1u;
  let complete = min(P.pooled, (t + 1u) / bs);
  for (var j = lid; j < count; j += NT) {
    var v = BIG;
    if (j != 0u && j < complete) { v = blockScores[(kvSlot * P.rangeRows + rangeRow) * P.blocks + j]; }
    blockKey[j] = sortable(v);
  }
  workgroupBarrier();
  let n = min(P.candidateBlocks, count);
  // The top-n blocks (forced ones carry BIG), written to picks in ascending block order.
${radixTopKWgsl('block', 'blockKey', 'count', 'n', (u, rank) => `candIndices[rowLocal * ROW_KEPT + ${rank}] = ${u};`)}`}
${phase === 'pick' ? `  if (lid == 0u) {
    candBounds[2u * rowLocal] = rowLocal * ROW_KEPT;
    candBounds[2u * rowLocal + 1u] = rowLocal * ROW_KEPT + n;
  }
}
` : `  // Stage 2: every visible token of the kept blocks (all full but the last, the current block).
  let m = (n - 1u) * bs + (t + 1u - current * bs);
  for (var u = lid; u < m; u += NT) { tokenKey[u] = candKeys[rowLocal * ROW_KEPT * bs + u]; }
  workgroupBarrier();
  let want = min(P.topK, m);${blockRows ? `
  for (var e = lid; e < n * W; e += NT) { atomicStore(&maskAcc[e], 0u); }
  workgroupBarrier();` : ''}
  // The top-K tokens, ties toward the later token, written in ascending token order.
${radixTopKWgsl('token', 'tokenKey', 'm', 'want', (u, rank) => `indices[start + ${rank}] = tokenOf(${u});${blockRows ? ` atomicOr(&maskAcc[(${u} / P.blockSize) * W + (${u} % P.blockSize) / 32u], 1u << ((${u} % P.blockSize) % 32u));` : ''}`)}
  if (lid == 0u) {
    bounds[2u * row] = start;
    bounds[2u * row + 1u] = start + want;
  }${blockRows ? `
  // The kept blocks holding a picked token, in ascending order, with their masks (n ≤ KEPT, one thread).
  if (lid == 0u) {
    var entries = 0u;
    for (var b = 0u; b < n; b++) {
      var any = 0u;
      for (var w = 0u; w < W; w++) { any = any | atomicLoad(&maskAcc[b * W + w]); }
      if (any == 0u) { continue; }
      blockIndices[row * KEPT + entries] = picks[b];
      for (var w = 0u; w < W; w++) { blockMasks[(row * KEPT + entries) * W + w] = atomicLoad(&maskAcc[b * W + w]); }
      entries++;
    }
    blockBounds[2u * row] = row * KEPT;
    blockBounds[2u * row + 1u] = row * KEPT + entries;
  }` : ''}
}
`}`;
});
