/**
 * Landmark-style block retrieval in WGSL: scoring, GQA reduction and top-k of one query row per
 * workgroup, exactly the CPU `selectRetrievedBlocks` (`landmark-retrieval.ts`):
 *
 *   current = ⌊(queryOffset + i) / bs⌋,  candidates j = 1 .. current−1 (complete blocks before the query's own)
 *   if current − 1 ≤ topK:  row = 0 .. current                                (every block, no ranking)
 *   else, per query head g of the KV head's group:
 *     s_gj = Σ_c q_c ≥ 0 ? q_c·hi_jc : q_c·lo_jc      ('quest': Quest's upper bound on max_t q·k_t)
 *     s_gj = q · mean_j                              ('mean')
 *     acc_j = Σ_g e^{scale·(s_gj − m_g)} / Σ_j' e^{scale·(s_gj' − m_g)}   ('sum-probability', softmax over the candidates only)
 *     acc_j = max_g s_gj                                                   ('max-score')
 *   row = {0} ∪ top-k of acc (ties toward the lower block index) ∪ {current}, ascending
 *
 * The candidate softmax spans blocks 1 .. current−1 only (not the first or own block), which is
 * why backend-gpu's `blockScoreWgsl` (softmax over every visible block) cannot be reused. The
 * top-k is `blockTopKWgsl`'s arg-max passes (one per pick, ordered by (score desc, index asc),
 * as the CPU's `topKIndices` breaks ties). Rows are processed `rowCount` at a time from
 * `rowStart`, so the score scratch is `slots × rowCount × blocks` floats, never rows × keys.
 */

import { argMaxPickWgsl, everyBlockRowWgsl, paramsStructWgsl, sortPicksWgsl, workgroupReduceWgsl } from './wgsl-snippets.js';

/** Uniform parameter block of the retrieval selection kernel. */
export const RETRIEVAL_SELECT_PARAMS = [
  'querySeq', 'queryOffset', 'slots', 'tilesX',
  'rowStart', 'rowCount', 'blockSize', 'blocks',
  'topK', 'stride', 'groupSize', 'scale',
] as const;

/** Threads per workgroup of the retrieval selection kernel. */
export const RETRIEVAL_SELECT_THREADS = 256;

/** What the retrieval selection kernel is specialised on. */
export interface RetrievalSelectKernelOptions {
  readonly headDim: number;
  /** Block representative: Quest min/max bounds (bindings 2 = max, 3 = min) or the mean key (binding 2). */
  readonly representative: 'quest' | 'mean';
  readonly groupReduce: 'sum-probability' | 'max-score';
  /** `topK` (the picks array; at least 1). */
  readonly maxPicks: number;
}

/**
 * Generates the WGSL of the fused scoring + top-k kernel. Bindings: 0 params, 1 q, 2 max (quest)
 * or mean, 3 min (quest only), 4 accumulated scores `[slots][rowCount][blocks]`, 5 per-head raw
 * scores (same shape, sum-probability only), 6 bounds, 7 indices (the selection target).
 */
export function retrievalSelectWgsl(o: RetrievalSelectKernelOptions): string {
  const quest = o.representative === 'quest';
  const sumProbability = o.groupReduce === 'sum-probability';
  const NT = RETRIEVAL_SELECT_THREADS;
  const scoreBody = quest
    ? `    let x = qs[c];
    s += select(x * repLo[at + c], x * repHi[at + c], x >= 0.0);`
    : `    s += qs[c] * repHi[at + c];`;
  return /* wgsl */ `
${paramsStructWgsl(RETRIEVAL_SELECT_PARAMS)}

const NT: u32 = ${NT}u;
const D: u32 = ${o.headDim}u;
const NONE: f32 = -3.4e38;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> repHi: array<f32>;
${quest ? '@group(0) @binding(3) var<storage, read> repLo: array<f32>;' : ''}
@group(0) @binding(4) var<storage, read_write> acc: array<f32>;
${sumProbability ? '@group(0) @binding(5) var<storage, read_write> raw: array<f32>;' : ''}
@group(0) @binding(6) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(7) var<storage, read_write> indices: array<u32>;

var<workgroup> qs: array<f32, ${o.headDim}>;
var<workgroup> redA: array<f32, ${NT}>;
var<workgroup> redB: array<f32, ${NT}>;
var<workgroup> bestIndex: array<u32, ${NT}>;
var<workgroup> picks: array<u32, ${Math.max(1, o.maxPicks)}>;

fn blockScore(slot: u32, j: u32) -> f32 {
  let at = (slot * P.blocks + j) * D;
  var s = 0.0;
  for (var c = 0u; c < D; c++) {
${scoreBody}
  }
  return s;
}

@compute @workgroup_size(${NT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.rowCount) { return; }
  let slot = linear / P.rowCount;
  let localRow = linear % P.rowCount;
  let i = P.rowStart + localRow;
  let current = (P.queryOffset + i) / P.blockSize;
  let row = slot * P.querySeq + i;
  let start = row * P.stride;
  if (current <= P.topK + 1u) {
    // At most topK candidates: the row keeps every block up to its own.
${everyBlockRowWgsl('current', '    ')}
  }
  let base = (slot * P.rowCount + localRow) * P.blocks;
  for (var g = 0u; g < P.groupSize; g++) {
    workgroupBarrier();
    let qRow = ((slot * P.groupSize + g) * P.querySeq + i) * D;
    for (var c = lid; c < D; c += NT) { qs[c] = q[qRow + c]; }
    workgroupBarrier();
${sumProbability ? `    // Online (max, sum of exp) over this thread's candidates, then a workgroup reduction.
    var m = NONE;
    var l = 0.0;
    for (var j = 1u + lid; j < current; j += NT) {
      let s = blockScore(slot, j);
      raw[base + j] = s;
      let mNew = max(m, s);
      l = l * exp(P.scale * (m - mNew)) + exp(P.scale * (s - mNew));
      m = mNew;
    }
    redA[lid] = m;
    workgroupBarrier();
${workgroupReduceWgsl('redA', 'max', '    ')}
    let rowMax = redA[0];
    redB[lid] = select(0.0, l * exp(P.scale * (m - rowMax)), l > 0.0);
    workgroupBarrier();
${workgroupReduceWgsl('redB', 'sum', '    ')}
    let total = redB[0];
    for (var j = 1u + lid; j < current; j += NT) {
      let p = exp(P.scale * (raw[base + j] - rowMax)) / total;
      acc[base + j] = select(p, acc[base + j] + p, g > 0u);
    }` : `    for (var j = 1u + lid; j < current; j += NT) {
      let s = blockScore(slot, j);
      acc[base + j] = select(s, max(acc[base + j], s), g > 0u);
    }`}
  }
  // topK arg-max passes over the candidates after the previous pick in (score desc, index asc) order.
  var prevKey = 3.4e38;
  var prevIndex = 0u;
  for (var p = 0u; p < P.topK; p++) {
    var key = NONE;
    var index = 0xffffffffu;
    for (var j = 1u + lid; j < current; j += NT) {
      let kj = acc[base + j];
      let after = kj < prevKey || (kj == prevKey && j > prevIndex);
      if (after && (kj > key || (kj == key && j < index))) { key = kj; index = j; }
    }
${argMaxPickWgsl('redA', 'bestIndex', '    ')}
  }
  if (lid == 0u) {
${sortPicksWgsl('    ')}
    indices[start] = 0u;
    for (var a = 0u; a < P.topK; a++) { indices[start + 1u + a] = picks[a]; }
    indices[start + P.topK + 1u] = current;
    bounds[2u * row] = start;
    bounds[2u * row + 1u] = start + P.topK + 2u;
  }
}
`;
}
