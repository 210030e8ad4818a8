/**
 * Kernel: DELTA's page scores of each query row (`select-pages.ts`, `decode-scores.ts`):
 *
 *   s[t] = max_h p[h][t] = exp(max_h (logit[h][t] − lse_h))     (unified over every query head of the batch)
 *   S[u] = Σ_{t ∈ page u, t < visible} s[t]                      (page u holds keys [u·P, (u+1)·P))
 *
 * Token-parallel: a workgroup of 256 threads owns `⌊256 / P⌋` consecutive pages (one page when
 * P > 256) of one (batch, row); each thread takes the max over heads of its token's
 * `logit − lse` (reads of one head are coalesced across threads), then the page's first thread
 * sums its P token scores in token order (pages longer than 256: each thread first sums its
 * strided tokens). The CPU sums in float64 over float32 token scores; here the sum is float32, so
 * page scores agree to ~1e-6 relative (top-k picks can differ only where two pages' scores tie
 * that closely). Pages past the row's last visible key get 0 (never read).
 */

/** Uniform parameter block of the page-score kernel (12 × 4 bytes). */
export const PAGE_SCORES_PARAMS = [
  'batches', 'heads', 'rows', 'rowStart',
  'queryOffset', 'keySeq', 'pageSize', 'pages',
  'tilesX', 'pageGroups', 'pad1', 'pad2',
] as const;

/** Threads per workgroup of the page-score kernel. */
export const PAGE_SCORES_THREADS = 256;

/** Pages one workgroup of the page-score kernel scores. */
export function pagesPerScoreGroup(pageSize: number): number {
  return Math.max(1, Math.floor(PAGE_SCORES_THREADS / pageSize));
}

/** Workgroups (and the `pageGroups` parameter) of the page-score kernel for `batches × rows` rows of `pages` pages. */
export function pageScoreGroups(batches: number, rows: number, pages: number, pageSize: number): { pageGroups: number; workgroups: number } {
  const pageGroups = Math.ceil(pages / pagesPerScoreGroup(pageSize));
  return { pageGroups, workgroups: batches * rows * pageGroups };
}

/** Generates the WGSL of the page-score kernel. */
export function pageScoresWgsl(): string {
  return /* wgsl */ `
const NT: u32 = ${PAGE_SCORES_THREADS}u;

struct Params {
  batches: u32, heads: u32, rows: u32, rowStart: u32,
  queryOffset: u32, keySeq: u32, pageSize: u32, pages: u32,
  tilesX: u32, pageGroups: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;

var<workgroup> part: array<f32, ${PAGE_SCORES_THREADS}>;

@compute @workgroup_size(${PAGE_SCORES_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.batches * P.rows * P.pageGroups) { return; }
  let group = linear % P.pageGroups;
  let br = linear / P.pageGroups;
  let r = br % P.rows;
  let b = br / P.rows;
  let visible = P.queryOffset + P.rowStart + r + 1u;
  let perGroup = max(1u, NT / P.pageSize);
  let firstPage = group * perGroup;
  let start = firstPage * P.pageSize;
  let end = min(min(firstPage + perGroup, P.pages) * P.pageSize, visible);
  // Token t's score, summed over this thread's tokens (one when P ≤ 256).
  var own = 0.0;
  for (var t = start + lid; t < end; t += NT) {
    var best = -3.0e38;
    for (var h = 0u; h < P.heads; h++) {
      let x = (b * P.heads + h) * P.rows + r;
      best = max(best, logits[x * P.keySeq + t] - lse[x]);
    }
    own += exp(best);
  }
  part[lid] = own;
  workgroupBarrier();
  // Page u of the group sums the entries of its threads [u·W, (u+1)·W), W = min(P, 256), in token order.
  let width = min(P.pageSize, NT);
  let u = firstPage + lid;
  if (lid < perGroup && u < P.pages) {
    var sum = 0.0;
    if (u * P.pageSize < visible) {
      for (var j = 0u; j < width; j++) { sum += part[lid * width + j]; }
    }
    scores[(b * P.rows + r) * P.pages + u] = sum;
  }
}
`;
}
