/**
 * Landmark-style block retrieval in WGSL, the ranking half: GQA reduction and top-k of one query
 * row (KV slot, query) per thread over the scores `candidateScoreWgsl` wrote, exactly the CPU
 * `selectRetrievedBlocks` (`landmark-retrieval.ts`):
 *
 *   current = ⌊(queryOffset + i) / bs⌋,  candidates j = 1 .. current−1 (complete blocks before the query's own)
 *   if current − 1 ≤ topK:  row = 0 .. current                                (every block, no ranking)
 *   else, per query head g of the KV head's group, with s_gj the tiled kernel's raw score
 *   (Quest's bound Σ_c q_c ≥ 0 ? q_c·hi_jc : q_c·lo_jc, or q · mean_j):
 *     m_g = max_j s_gj,  Z_g = Σ_j e^{scale·(s_gj − m_g)}                   (two passes, j ascending, as the CPU)
 *     acc_j = Σ_g e^{scale·(s_gj − m_g)} / Z_g   (g ascending from 0)     ('sum-probability', softmax over the candidates only)
 *     acc_j = max_g s_gj                                                   ('max-score')
 *   row = {0} ∪ top-k of acc (ties toward the lower block index) ∪ {current}, ascending
 *
 * The candidate softmax spans blocks 1 .. current−1 only (not the first or own block), which is
 * why backend-gpu's `blockScoreWgsl` (softmax over every visible block) cannot be reused.
 *
 * One thread per row, no barriers: the thread walks its candidates in ascending order keeping the
 * best `topK` in a sorted private array, ordered (acc descending, index ascending) like the CPU's
 * `topKIndices` — a later candidate with an equal score ranks below the kept one, so it enters
 * only when strictly greater. Scores are read as vec4 (the score rows are padded to a multiple of
 * 4 floats, {@link scoreRowStride}), so a thread's successive reads are one contiguous 16-byte
 * run each and a warp's 32 rows share their cache lines over the scan. Per row and query head
 * that is 2 passes (max, Z; 'sum-probability' only) plus the ranking pass, ~3 · current floats
 * read, no workgroup memory; the row's picks and the group's (m_g, Z_g) live in registers /
 * private memory. Rows are `rowStart .. rowStart + rowCount`, like the scores.
 */
import { memoKernel } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the retrieval top-k kernel. */
export const RETRIEVAL_TOP_K_PARAMS = [
  'querySeq', 'queryOffset', 'slots', 'tilesX',
  'rowStart', 'rowCount', 'blockSize', 'rowVec4s',
  'topK', 'stride', 'pad0', 'scale',
] as const;

/** Threads per workgroup of the retrieval top-k kernel (one query row each). */
export const RETRIEVAL_TOP_K_THREADS = 64;

/** Floats per score row for `blocks` candidate blocks: rounded up to a multiple of 4, so rows start on 16-byte vec4 boundaries. */
export function scoreRowStride(blocks: number): number {
  return Math.ceil(Math.max(1, blocks) / 4) * 4;
}

/**
 * One candidate's step of the ranking scan: candidate \`j\` (a u32 expression) with accumulated
 * score \`score\`, taken when \`live\` holds (an expression of \`j\` and \`current\`). Inserts it into the
 * sorted picks when it beats the weakest kept one (strictly: equal scores keep the lower index).
 */
export function insertPickWgsl(score: string, j: string, live: string): string {
  return `    {
      let j = ${j};
      let s = ${score};
      if (${live} && (kept < n || s > keys[n - 1u])) {
        var p = kept;
        if (kept == n) { p = n - 1u; } else { kept++; }
        while (p > 0u && s > keys[p - 1u]) {
          keys[p] = keys[p - 1u];
          picked[p] = picked[p - 1u];
          p--;
        }
        keys[p] = s;
        picked[p] = j;
      }
    }`;
}

/** What the retrieval top-k kernel is specialised on. */
export interface RetrievalTopKKernelOptions {
  readonly groupReduce: 'sum-probability' | 'max-score';
  /** `topK` (the picks array; at least 1). */
  readonly maxPicks: number;
  /** Query heads per KV head (the group's (m_g, Z_g) array). */
  readonly groupSize: number;
}

/** The params struct, constants and bindings both ranking kernels declare (scores as `element`s). */
function rankingHeader(threads: number, o: RetrievalTopKKernelOptions, element: 'vec4<f32>' | 'f32'): string {
  return /* wgsl */ `
struct Params {
  querySeq: u32, queryOffset: u32, slots: u32, tilesX: u32,
  rowStart: u32, rowCount: u32, blockSize: u32, rowVec4s: u32,
  topK: u32, stride: u32, pad0: u32, scale: f32,
}

const NT: u32 = ${threads}u;
const G: u32 = ${Math.max(1, o.groupSize)}u;
const MP: u32 = ${Math.max(1, o.maxPicks)}u;
const NONE: f32 = -3.4e38;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> scores: array<${element}>;
@group(0) @binding(2) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;
`;
}

/**
 * Both ranking kernels' start: row `t` (a WGSL expression) of the dispatch and its geometry, and
 * the rows that need no ranking (topK 0: the first and the own block; at most topK candidates:
 * every block up to the own), written by the threads `first`, `first + step`, … (`lead`: the one
 * that writes the bounds), which `return`.
 */
function rowPrologueWgsl(t: string, first: string, step: string, lead: string): string {
  return /* wgsl */ `  let t = ${t};
  if (t >= P.slots * P.rowCount) { return; }
  let slot = t / P.rowCount;
  let localRow = t % P.rowCount;
  let i = P.rowStart + localRow;
  let current = (P.queryOffset + i) / P.blockSize;
  let row = slot * P.querySeq + i;
  let start = row * P.stride;
  if (P.topK == 0u) {
    if (${lead}) {
      indices[start] = 0u;
      indices[start + 1u] = current;
      bounds[2u * row] = start;
      bounds[2u * row + 1u] = start + select(2u, 1u, current == 0u);
    }
    return;
  }
  if (current <= P.topK + 1u) {
    for (var j = ${first}; j <= current; j += ${step}) { indices[start + j] = j; }
    if (${lead}) {
      bounds[2u * row] = start;
      bounds[2u * row + 1u] = start + current + 1u;
    }
    return;
  }`;
}

/**
 * WGSL: sorts the n picks in \`picks\` ascending and writes the CSR row at \`start\` — block 0 first
 * when \`firstBlock\` (landmark retrieval's always-kept first block), the picks, then \`own\` (the
 * query's own block) — and its bounds. Needs \`n\`, \`start\`, \`row\` in scope.
 */
export function sortedPicksRowWgsl(picks: string, indent: string, firstBlock: boolean, own: string): string {
  const at = firstBlock ? 'start + 1u' : 'start';
  return /* wgsl */ `${indent}for (var a = 1u; a < n; a++) {
${indent}  let x = ${picks}[a];
${indent}  var b = a;
${indent}  while (b > 0u && ${picks}[b - 1u] > x) { ${picks}[b] = ${picks}[b - 1u]; b--; }
${indent}  ${picks}[b] = x;
${indent}}${firstBlock ? `\n${indent}indices[start] = 0u;` : ''}
${indent}for (var a = 0u; a < n; a++) { indices[${at} + a] = ${picks}[a]; }
${indent}indices[${at} + n] = ${own};
${indent}bounds[2u * row] = start;
${indent}bounds[2u * row + 1u] = ${at} + n + 1u;`;
}

/**
 * Generates the WGSL of the reduction + top-k kernel. Bindings: 0 params, 1 scores as vec4
 * `[slots·groupSize][rowCount][rowVec4s]` (query head g of KV slot s at s·groupSize + g), 2 bounds,
 * 3 indices (the selection target, rows of the chunk's KV slots at a fixed `stride`).
 */
export const retrievalTopKWgsl = memoKernel((o: RetrievalTopKKernelOptions): string => {
  const sumProbability = o.groupReduce === 'sum-probability';
  const G = Math.max(1, o.groupSize);
  const MP = Math.max(1, o.maxPicks);
  return /* wgsl */ `${rankingHeader(RETRIEVAL_TOP_K_THREADS, o, 'vec4<f32>')}
@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${rowPrologueWgsl('(wid.x + wid.y * P.tilesX) * NT + lid', '0u', '1u', 'true')}
  // Score row of query head g: vec4 index base + g · headStep + c holds candidates 4c .. 4c + 3.
  let base = (slot * G * P.rowCount + localRow) * P.rowVec4s;
  let headStep = P.rowCount * P.rowVec4s;
  let chunks = (current + 3u) / 4u;
${sumProbability ? `  var m: array<f32, ${G}>;
  var z: array<f32, ${G}>;
  for (var g = 0u; g < G; g++) {
    let raw = base + g * headStep;
    var mg = NONE;
    for (var c = 0u; c < chunks; c++) {
      let v = scores[raw + c];
      let j = 4u * c;
      if (j >= 1u) { mg = max(mg, v.x); }
      if (j + 1u < current) { mg = max(mg, v.y); }
      if (j + 2u < current) { mg = max(mg, v.z); }
      if (j + 3u < current) { mg = max(mg, v.w); }
    }
    var zg = 0.0;
    for (var c = 0u; c < chunks; c++) {
      let v = scores[raw + c];
      let j = 4u * c;
      if (j >= 1u) { zg += exp(P.scale * (v.x - mg)); }
      if (j + 1u < current) { zg += exp(P.scale * (v.y - mg)); }
      if (j + 2u < current) { zg += exp(P.scale * (v.z - mg)); }
      if (j + 3u < current) { zg += exp(P.scale * (v.w - mg)); }
    }
    m[g] = mg;
    z[g] = zg;
  }` : ''}
  // The picks, best first: keys[0 .. kept) descending, equal keys in ascending index order.
  var keys: array<f32, ${MP}>;
  var picked: array<u32, ${MP}>;
  var kept = 0u;
  let n = P.topK;
  for (var c = 0u; c < chunks; c++) {
${sumProbability
    ? `    var acc = vec4<f32>(0.0);
    for (var g = 0u; g < G; g++) {
      acc += exp(P.scale * (scores[base + g * headStep + c] - vec4<f32>(m[g]))) / z[g];
    }`
    : `    var acc = scores[base + c];
    for (var g = 1u; g < G; g++) { acc = max(acc, scores[base + g * headStep + c]); }`}
${(['x', 'y', 'z', 'w'] as const).map((e, k) => insertPickWgsl(`acc.${e}`, `4u * c + ${k}u`, k === 0 ? `j >= 1u` : `j < current`)).join('\n')}
  }
${sortedPicksRowWgsl('picked', '  ', true, 'current')}
}
`;
});

/**
 * Module-scope WGSL of a workgroup-per-row ranking ({@link workgroupTopKWgsl}): its reduction
 * arrays, the `topK` picks (`picks`, MP of them) and the ranking order. Needs `NT`, `MP`.
 */
export const WORKGROUP_TOP_K_DECLARATIONS = /* wgsl */ `
const NO_PICK: u32 = 0xffffffffu;
var<workgroup> redValue: array<f32, NT>;
var<workgroup> redIndex: array<u32, NT>;
var<workgroup> picks: array<u32, MP>;

// (a, ia) ranks before (b, ib): the higher score, on a tie the lower block.
fn before(a: f32, ia: u32, b: f32, ib: u32) -> bool {
  return ib == NO_PICK || (ia != NO_PICK && (a > b || (a == b && ia < ib)));
}
`;

/**
 * WGSL statements: the best \`n\` (a u32 in scope, at most MP, at most the candidates) of the
 * candidates \`first\`, \`first + 1\`, … below \`end\` into the workgroup array \`picks\`, best first,
 * ties toward the lower candidate. \`score\` computes \`acc\` (f32) of \`candidate\`. Each thread keeps
 * the best n of its strided candidates (ascending, so equal scores keep the lower one), then n
 * rounds of a workgroup arg-max over the threads' heads pick them. Must be reached by the whole
 * workgroup (barriers); uses {@link WORKGROUP_TOP_K_DECLARATIONS}.
 */
export function workgroupTopKWgsl(first: string, end: string, score: string): string {
  return /* wgsl */ `  var keys: array<f32, MP>;
  var picked: array<u32, MP>;
  var kept = 0u;
  for (var candidate = ${first} + lid; candidate < ${end}; candidate += NT) {
${score}
${insertPickWgsl('acc', 'candidate', 'true')}
  }
  var head = 0u;
  for (var round = 0u; round < n; round++) {
    redValue[lid] = select(NONE, keys[min(head, MP - 1u)], head < kept);
    redIndex[lid] = select(NO_PICK, picked[min(head, MP - 1u)], head < kept);
    workgroupBarrier();
    for (var half = NT / 2u; half > 0u; half = half / 2u) {
      if (lid < half && before(redValue[lid + half], redIndex[lid + half], redValue[lid], redIndex[lid])) {
        redValue[lid] = redValue[lid + half];
        redIndex[lid] = redIndex[lid + half];
      }
      workgroupBarrier();
    }
    let winner = redIndex[0];
    if (head < kept && picked[min(head, MP - 1u)] == winner) { head++; }
    if (lid == 0u) { picks[round] = winner; }
    workgroupBarrier();
  }`;
}

/** Threads per workgroup of {@link retrievalTopKRowsWgsl} (one row each workgroup). */
export const RETRIEVAL_TOP_K_ROW_THREADS = 256;

/**
 * Most rows (KV slots × query rows) for which {@link retrievalTopKRowsWgsl} runs instead of
 * {@link retrievalTopKWgsl}: with few rows (a decode step's) one thread per row leaves the GPU
 * nearly idle while each scans ~1 000 candidates three times in series (~0.6–0.8 ms of a 64k
 * step on the H100); a workgroup per row spreads the scan over 256 threads.
 */
export const RETRIEVAL_TOP_K_ROWS_MAX = 2048;

/**
 * {@link retrievalTopKWgsl} with one workgroup per row (same params, bindings and result): the
 * group's maxima and denominators are workgroup reductions, each thread keeps the best `topK` of
 * its strided candidates (ascending, so equal scores keep the lower index), and `topK` rounds of
 * a workgroup arg-max over the threads' heads (score descending, index ascending) pick the row's
 * blocks. The denominators are summed in tree order, not ascending: equal to the serial kernel's
 * up to float32 rounding (both round the CPU's float64 sums), so only a near-tie may rank apart.
 */
export const retrievalTopKRowsWgsl = memoKernel((o: RetrievalTopKKernelOptions): string => {
  const sumProbability = o.groupReduce === 'sum-probability';
  return /* wgsl */ `${rankingHeader(RETRIEVAL_TOP_K_ROW_THREADS, o, 'f32')}${WORKGROUP_TOP_K_DECLARATIONS}
var<workgroup> groupMax: array<f32, G>;
var<workgroup> groupSum: array<f32, G>;

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${rowPrologueWgsl('wid.x + wid.y * P.tilesX', 'lid', 'NT', 'lid == 0u')}
  // Score row of query head g: floats base + g · headStep + j, candidates j = 1 .. current − 1.
  let base = (slot * G * P.rowCount + localRow) * P.rowVec4s * 4u;
  let headStep = P.rowCount * P.rowVec4s * 4u;
${sumProbability ? `  for (var g = 0u; g < G; g++) {
    var mg = NONE;
    for (var j = 1u + lid; j < current; j += NT) { mg = max(mg, scores[base + g * headStep + j]); }
    redValue[lid] = mg;
    workgroupBarrier();
    for (var half = NT / 2u; half > 0u; half = half / 2u) {
      if (lid < half) { redValue[lid] = max(redValue[lid], redValue[lid + half]); }
      workgroupBarrier();
    }
    let m = redValue[0];
    workgroupBarrier();
    var zg = 0.0;
    for (var j = 1u + lid; j < current; j += NT) { zg += exp(P.scale * (scores[base + g * headStep + j] - m)); }
    redValue[lid] = zg;
    workgroupBarrier();
    for (var half = NT / 2u; half > 0u; half = half / 2u) {
      if (lid < half) { redValue[lid] = redValue[lid] + redValue[lid + half]; }
      workgroupBarrier();
    }
    if (lid == 0u) {
      groupMax[g] = m;
      groupSum[g] = redValue[0];
    }
    workgroupBarrier();
  }` : ''}
  let n = P.topK;
${workgroupTopKWgsl(
    '1u',
    'current',
    sumProbability
      ? `    var acc = 0.0;
    for (var g = 0u; g < G; g++) { acc += exp(P.scale * (scores[base + g * headStep + candidate] - groupMax[g])) / groupSum[g]; }`
      : `    var acc = scores[base + candidate];
    for (var g = 1u; g < G; g++) { acc = max(acc, scores[base + g * headStep + candidate]); }`,
  )}
  if (lid == 0u) {
${sortedPicksRowWgsl('picks', '    ', true, 'current')}
  }
}
`;
});
