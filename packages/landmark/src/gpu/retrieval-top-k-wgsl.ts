/**
 * Landmark-style block retrieval in WGSL, the ranking half: GQA reduction and top-k of one query
 * row per workgroup over the scores `candidateScoreWgsl` wrote, exactly the CPU
 * `selectRetrievedBlocks` (`landmark-retrieval.ts`):
 *
 *   current = ⌊(queryOffset + i) / bs⌋,  candidates j = 1 .. current−1 (complete blocks before the query's own)
 *   if current − 1 ≤ topK:  row = 0 .. current                                (every block, no ranking)
 *   else, per query head g of the KV head's group, with s_gj the tiled kernel's raw score
 *   (Quest's bound Σ_c q_c ≥ 0 ? q_c·hi_jc : q_c·lo_jc, or q · mean_j):
 *     acc_j = Σ_g e^{scale·(s_gj − m_g)} / Σ_j' e^{scale·(s_gj' − m_g)}   ('sum-probability', softmax over the candidates only)
 *     acc_j = max_g s_gj                                                   ('max-score')
 *   row = {0} ∪ top-k of acc (ties toward the lower block index) ∪ {current}, ascending
 *
 * The candidate softmax spans blocks 1 .. current−1 only (not the first or own block), which is
 * why backend-gpu's `blockScoreWgsl` (softmax over every visible block) cannot be reused. The
 * top-k is `blockTopKWgsl`'s arg-max passes (one per pick, ordered by (score desc, index asc),
 * as the CPU's `topKIndices` breaks ties). The accumulated scores of candidates below
 * `RETRIEVAL_TOP_K_CACHE` live in workgroup memory (each thread owns the candidates
 * j ≡ 1 + lid mod NT, so no barrier guards them); later ones go back into query head 0's score
 * row, in place. Rows are `rowStart .. rowStart + rowCount`, like the scores.
 */

import { argMaxPickWgsl, everyBlockRowWgsl, paramsStructWgsl, sortPicksWgsl, workgroupReduceWgsl } from './wgsl-snippets.js';

/** Uniform parameter block of the retrieval top-k kernel. */
export const RETRIEVAL_TOP_K_PARAMS = [
  'querySeq', 'queryOffset', 'slots', 'tilesX',
  'rowStart', 'rowCount', 'blockSize', 'blocks',
  'topK', 'stride', 'groupSize', 'scale',
] as const;

/** Threads per workgroup of the retrieval top-k kernel (one query row each). */
export const RETRIEVAL_TOP_K_THREADS = 128;

/** Candidates whose scores the top-k kernels keep in workgroup memory (6 KiB per array: every candidate of 64k keys in blocks of 64 or spans of 51). */
export const RETRIEVAL_TOP_K_CACHE = 1536;

/** What the retrieval top-k kernel is specialised on. */
export interface RetrievalTopKKernelOptions {
  readonly groupReduce: 'sum-probability' | 'max-score';
  /** `topK` (the picks array; at least 1). */
  readonly maxPicks: number;
}

/**
 * Generates the WGSL of the reduction + top-k kernel. Bindings: 0 params, 1 scores
 * `[slots·groupSize][rowCount][blocks]` (query head g of KV slot s at s·groupSize + g; query head
 * 0's row is overwritten), 2 bounds, 3 indices (the selection target, rows of the chunk's KV slots).
 */
export function retrievalTopKWgsl(o: RetrievalTopKKernelOptions): string {
  const sumProbability = o.groupReduce === 'sum-probability';
  const NT = RETRIEVAL_TOP_K_THREADS;
  return /* wgsl */ `
${paramsStructWgsl(RETRIEVAL_TOP_K_PARAMS)}

const NT: u32 = ${NT}u;
const CACHE: u32 = ${RETRIEVAL_TOP_K_CACHE}u;
const NONE: f32 = -3.4e38;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;

var<workgroup> redA: array<f32, ${NT}>;
${sumProbability ? `var<workgroup> redB: array<f32, ${NT}>;
var<workgroup> rawCache: array<f32, ${RETRIEVAL_TOP_K_CACHE}>;` : ''}
var<workgroup> accCache: array<f32, ${RETRIEVAL_TOP_K_CACHE}>;
var<workgroup> bestIndex: array<u32, ${NT}>;
var<workgroup> picks: array<u32, ${Math.max(1, o.maxPicks)}>;

// The accumulated score of candidate j (workgroup memory below CACHE, else query head 0's row at base).
fn accGet(base: u32, j: u32) -> f32 {
  if (j < CACHE) { return accCache[j]; }
  return scores[base + j];
}

fn accSet(base: u32, j: u32, x: f32) {
  if (j < CACHE) { accCache[j] = x; } else { scores[base + j] = x; }
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
  let base = (slot * P.groupSize * P.rowCount + localRow) * P.blocks;
  if (P.topK > 0u) {
  for (var g = 0u; g < P.groupSize; g++) {
    let raw = base + g * P.rowCount * P.blocks;
${sumProbability ? `    // Online (max, sum of exp) over this thread's candidates, then a workgroup reduction.
    var m = NONE;
    var l = 0.0;
    for (var j = 1u + lid; j < current; j += NT) {
      let s = scores[raw + j];
      if (j < CACHE) { rawCache[j] = s; }
      let mNew = max(m, s);
      l = l * exp(P.scale * (m - mNew)) + exp(P.scale * (s - mNew));
      m = mNew;
    }
    workgroupBarrier();
    redA[lid] = m;
    workgroupBarrier();
${workgroupReduceWgsl('redA', 'max', '    ')}
    let rowMax = redA[0];
    redB[lid] = select(0.0, l * exp(P.scale * (m - rowMax)), l > 0.0);
    workgroupBarrier();
${workgroupReduceWgsl('redB', 'sum', '    ')}
    let total = redB[0];
    for (var j = 1u + lid; j < current; j += NT) {
      var s: f32;
      if (j < CACHE) { s = rawCache[j]; } else { s = scores[raw + j]; }
      let p = exp(P.scale * (s - rowMax)) / total;
      accSet(base, j, select(p, accGet(base, j) + p, g > 0u));
    }` : `    for (var j = 1u + lid; j < current; j += NT) {
      let s = scores[raw + j];
      accSet(base, j, select(s, max(accGet(base, j), s), g > 0u));
    }`}
  }
  }
  // topK arg-max passes over the candidates after the previous pick in (score desc, index asc) order.
  var prevKey = 3.4e38;
  var prevIndex = 0u;
  for (var p = 0u; p < P.topK; p++) {
    var key = NONE;
    var index = 0xffffffffu;
    for (var j = 1u + lid; j < current; j += NT) {
      let kj = accGet(base, j);
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
