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

/**
 * Generates the WGSL of the reduction + top-k kernel. Bindings: 0 params, 1 scores as vec4
 * `[slots·groupSize][rowCount][rowVec4s]` (query head g of KV slot s at s·groupSize + g), 2 bounds,
 * 3 indices (the selection target, rows of the chunk's KV slots at a fixed `stride`).
 */
export function retrievalTopKWgsl(o: RetrievalTopKKernelOptions): string {
  const sumProbability = o.groupReduce === 'sum-probability';
  const NT = RETRIEVAL_TOP_K_THREADS;
  const G = Math.max(1, o.groupSize);
  const MP = Math.max(1, o.maxPicks);
  return /* wgsl */ `
struct Params {
  querySeq: u32, queryOffset: u32, slots: u32, tilesX: u32,
  rowStart: u32, rowCount: u32, blockSize: u32, rowVec4s: u32,
  topK: u32, stride: u32, pad0: u32, scale: f32,
}

const NT: u32 = ${NT}u;
const G: u32 = ${G}u;
const MP: u32 = ${MP}u;
const NONE: f32 = -3.4e38;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> scores: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;

@compute @workgroup_size(${NT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = (wid.x + wid.y * P.tilesX) * NT + lid;
  if (t >= P.slots * P.rowCount) { return; }
  let slot = t / P.rowCount;
  let localRow = t % P.rowCount;
  let i = P.rowStart + localRow;
  let current = (P.queryOffset + i) / P.blockSize;
  let row = slot * P.querySeq + i;
  let start = row * P.stride;
  if (P.topK == 0u) {
    // No picks: the first and the own block.
    indices[start] = 0u;
    indices[start + 1u] = current;
    bounds[2u * row] = start;
    bounds[2u * row + 1u] = start + select(2u, 1u, current == 0u);
    return;
  }
  if (current <= P.topK + 1u) {
    // At most topK candidates: the row keeps every block up to its own.
    for (var j = 0u; j <= current; j++) { indices[start + j] = j; }
    bounds[2u * row] = start;
    bounds[2u * row + 1u] = start + current + 1u;
    return;
  }
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
  // Ascending block order for the CSR row.
  for (var a = 1u; a < n; a++) {
    let x = picked[a];
    var b = a;
    while (b > 0u && picked[b - 1u] > x) { picked[b] = picked[b - 1u]; b--; }
    picked[b] = x;
  }
  indices[start] = 0u;
  for (var a = 0u; a < n; a++) { indices[start + 1u + a] = picked[a]; }
  indices[start + n + 1u] = current;
  bounds[2u * row] = start;
  bounds[2u * row + 1u] = start + n + 2u;
}
`;
}
