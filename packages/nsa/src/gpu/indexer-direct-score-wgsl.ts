/**
 * Kernel: the hierarchical indexer's scores for calls of few rows (decode steps), spread over the
 * GPU instead of one workgroup per row (the row-parallel twin of the tiled passes, which take 64
 * rows per workgroup and would leave a decode step's one row per KV slot on a handful of SMs):
 *
 *   'blocks'  Î_t[j] = q̄_t · mean(K_j)      complete blocks j, one workgroup per (row, 64 blocks),
 *             into the block-score scratch the `'pick'` pass reads (`indexer-score-tile-wgsl.ts`'s
 *             layout: `(slot · rangeRows + range row) · blocks + j`); rows with t + 1 ≤ K skip
 *   'tokens'  Ŝ_t[u] = q̄_t · k_{b·B + j}      kept entry e of row t (block b, from the `'pick'`
 *             pass), u = e · B + j, one workgroup per (row, kept entry), as order-preserving u32
 *             keys into `candKeys[(row · maxKept + e) · B + j]`, the layout the `'select'` pass
 *             reads (`indexer-candidate-score-wgsl.ts`'s)
 *
 * The fused kernel this replaces for decode steps read a row's 1 024 block means and its c · B
 * candidate keys (1 MiB at the defaults) through one SM. Where D is a multiple of 32, LANES threads
 * share a key (vec4 loads, 128 contiguous bytes per group and load); otherwise one thread scores a
 * key. The group query q̄ = Σ_g q^g is summed in head order, as the CPU and the other passes do.
 * Keys past the row's position (in its current block) are written and never read. In `'tokens'`
 * mode key t of KV slot s is row `s · keyStride + t` of the chunk's k (backend-gpu's
 * `chunkKeyStride`: a KV cache's capacity between slots); `keySeq` bounds the keys. The block means
 * of `'blocks'` are compact (`pooled` per slot).
 */
import { memoKernel, type TileOperands } from '@sparse-attn/backend-gpu';
import { groupQueryWgsl } from './indexer-score-tile-wgsl.js';
import { SORTABLE_WGSL } from './radix-top-k-wgsl.js';

/** Scalar operand layout of `q` for the shared group-query sum (`groupQueryWgsl`). */
const SCALAR_Q: TileOperands = { vectorized: false, element: 'f32', zero: '0.0', at: (row, e, width) => `(${row}) * ${width} + ${e}` };

/** Uniform parameter block of the direct candidate-score kernel (u32 fields). */
export const INDEXER_DIRECT_PARAMS = [
  'querySeq', 'keySeq', 'blockSize', 'rangeRows',
  'rowStart', 'rows', 'tilesX', 'queryOffset',
  'pooled', 'blocks', 'topK', 'parts',
  'keyStride', 'pad0', 'pad1', 'pad2',
] as const;

/** Blocks one workgroup of the `'blocks'` mode scores. */
export const INDEXER_DIRECT_BLOCKS = 64;

/** Threads per workgroup of the direct candidate-score kernel. */
export const INDEXER_DIRECT_THREADS = 256;

/** Threads that share one key's dot product where D is a multiple of 32 (8 × vec4 = 128 contiguous bytes per load). */
const LANES = 8;

/** Compile-time shape of the direct candidate-score kernel. */
export interface IndexerDirectKernelOptions {
  readonly headDim: number;
  readonly groupSize: number;
  /** Kept entries per row (the pick pass's CSR stride). */
  readonly maxKept: number;
  readonly mode: 'blocks' | 'tokens';
}

/** Bytes of workgroup memory the kernel declares. */
export function indexerDirectWorkgroupBytes(o: IndexerDirectKernelOptions): number {
  return 4 * o.headDim + (o.headDim % (4 * LANES) === 0 ? 4 * o.headDim + 4 * INDEXER_DIRECT_THREADS : 0) + 8;
}

/** Generates the direct scoring kernel of one mode. */
export const indexerDirectScoreWgsl = memoKernel(function indexerDirectScoreWgsl(o: IndexerDirectKernelOptions): string {
  const coalesced = o.headDim % (4 * LANES) === 0;
  const blocks = o.mode === 'blocks';
  // Score of key row `keyRow` (of k or of the means) as `s`; `store` writes it for key j.
  const score = (store: string) =>
    coalesced
      ? `  let lane = lid % ${LANES}u;
  for (var j0 = 0u; j0 < keys; j0 += NT / ${LANES}u) {
    let j = j0 + lid / ${LANES}u;
    var s4 = vec4<f32>(0.0);
    if (j < keys) {
      let base = (keyRow0 + j) * (D / 4u);
      for (var c = lane; c < D / 4u; c += ${LANES}u) { s4 = fma(gq4[c], rows[base + c], s4); }
    }
    partial[lid] = (s4.x + s4.y) + (s4.z + s4.w);
    workgroupBarrier();
    if (lane == 0u && j < keys) {
      var s = 0.0;
      for (var x = 0u; x < ${LANES}u; x++) { s += partial[lid + x]; }
      ${store}
    }
    workgroupBarrier();
  }`
      : `  for (var j = lid; j < keys; j += NT) {
    let base = (keyRow0 + j) * D;
    var s = 0.0;
    for (var c = 0u; c < D; c++) { s += gq[c] * rows[base + c]; }
    ${store}
  }`;
  return /* wgsl */ `
const NT: u32 = ${INDEXER_DIRECT_THREADS}u;
const D: u32 = ${o.headDim}u;
const G: u32 = ${o.groupSize}u;
const KEPT: u32 = ${Math.max(1, o.maxKept)}u;

struct Params {
  querySeq: u32, keySeq: u32, blockSize: u32, rangeRows: u32,
  rowStart: u32, rows: u32, tilesX: u32, queryOffset: u32,
  pooled: u32, blocks: u32, topK: u32, parts: u32,
  keyStride: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
// The key rows scored: ${blocks ? 'the pooled block means (slot-major)' : 'the keys'}.
@group(0) @binding(2) var<storage, read> rows: array<${coalesced ? 'vec4<f32>' : 'f32'}>;
${
  blocks
    ? '@group(0) @binding(3) var<storage, read_write> blockScores: array<f32>;'
    : `@group(0) @binding(3) var<storage, read> candBounds: array<u32>;
@group(0) @binding(4) var<storage, read> candIndices: array<u32>;
@group(0) @binding(5) var<storage, read_write> candKeys: array<u32>;`
}

var<workgroup> gq: array<f32, ${o.headDim}>;
${coalesced ? `var<workgroup> gq4: array<vec4<f32>, ${o.headDim / 4}>;
var<workgroup> partial: array<f32, ${INDEXER_DIRECT_THREADS}>;` : ''}
var<workgroup> wgFirst: u32;
var<workgroup> wgKeys: u32;

${blocks ? '' : SORTABLE_WGSL}

${groupQueryWgsl(SCALAR_Q)}

@compute @workgroup_size(${INDEXER_DIRECT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  // Workgroups per row: P.parts (blocks: ⌈blocks / 64⌉ chunks; tokens: the kept entries).
  if (linear >= P.rows * P.parts) { return; }
  // Row of the range (slot-major, as the other passes number them) and its part.
  let rowLocal = linear / P.parts;
  let part = linear % P.parts;
  let kvSlot = rowLocal / P.rangeRows;
  let i = P.rowStart + rowLocal % P.rangeRows;
  if (lid == 0u) {
${
  blocks
    ? `    // Complete blocks this workgroup scores (none for rows that keep every key).
    let t = P.queryOffset + i;
    let complete = min(P.pooled, (t + 1u) / P.blockSize);
    let first = part * ${INDEXER_DIRECT_BLOCKS}u;
    wgFirst = first;
    wgKeys = select(0u, min(${INDEXER_DIRECT_BLOCKS}u, complete - min(first, complete)), t + 1u > P.topK);`
    : `    // The kept entry's block (none past the row's kept count).
    let kept = candBounds[2u * rowLocal + 1u] - candBounds[2u * rowLocal];
    let block = select(0u, candIndices[rowLocal * KEPT + part], part < kept);
    wgFirst = block * P.blockSize;
    wgKeys = select(0u, min(P.blockSize, P.keySeq - min(block * P.blockSize, P.keySeq)), part < kept);`
}
  }
  let keys = workgroupUniformLoad(&wgKeys);
  if (keys == 0u) { return; }
  let first = workgroupUniformLoad(&wgFirst);
  for (var c = lid; c < D; c += NT) { gq[c] = groupQuery(kvSlot * G * P.querySeq + i, c); }
  workgroupBarrier();
${coalesced ? `  for (var c = lid; c < D / 4u; c += NT) { gq4[c] = vec4<f32>(gq[4u * c], gq[4u * c + 1u], gq[4u * c + 2u], gq[4u * c + 3u]); }
  workgroupBarrier();` : ''}
  let keyRow0 = ${blocks ? 'kvSlot * P.pooled + first' : 'kvSlot * P.keyStride + first'};
${score(blocks ? 'blockScores[rowLocal * P.blocks + first + j] = s;' : 'candKeys[(rowLocal * KEPT + part) * P.blockSize + j] = sortable(s);')}
}
`;
});
