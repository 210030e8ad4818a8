/**
 * Kernel: DELTA's page scores of each query row (`select-pages.ts`, `decode-scores.ts`):
 *
 *   s[t] = max_h p[h][t] = exp(max_h (logit[h][t] − lse_h))     (unified over every query head of the batch)
 *   S[u] = Σ_{t ∈ page u, t < visible} s[t]                      (page u holds keys [u·P, (u+1)·P))
 *
 * One thread per (batch, row, page). The CPU sums in float64 over float32 token scores; here the
 * sum is float32, so page scores agree to ~1e-6 relative (top-k picks can differ only where two
 * pages' scores tie that closely). Pages past the row's last visible key get 0 (never read).
 */

/** Uniform parameter block of the page-score kernel (12 × 4 bytes). */
export const PAGE_SCORES_PARAMS = [
  'batches', 'heads', 'rows', 'rowStart',
  'queryOffset', 'keySeq', 'pageSize', 'pages',
  'tilesX', 'pad0', 'pad1', 'pad2',
] as const;

/** Threads per workgroup of the page-score kernel. */
export const PAGE_SCORES_THREADS = 64;

/** Generates the WGSL of the page-score kernel. */
export function pageScoresWgsl(): string {
  return /* wgsl */ `
struct Params {
  batches: u32, heads: u32, rows: u32, rowStart: u32,
  queryOffset: u32, keySeq: u32, pageSize: u32, pages: u32,
  tilesX: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> lse: array<f32>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;

@compute @workgroup_size(${PAGE_SCORES_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = (wid.x + wid.y * P.tilesX) * ${PAGE_SCORES_THREADS}u + lid;
  if (g >= P.batches * P.rows * P.pages) { return; }
  let u = g % P.pages;
  let br = g / P.pages;
  let r = br % P.rows;
  let b = br / P.rows;
  let visible = P.queryOffset + P.rowStart + r + 1u;
  let start = u * P.pageSize;
  if (start >= visible) {
    scores[g] = 0.0;
    return;
  }
  let end = min(start + P.pageSize, visible);
  var sum = 0.0;
  for (var t = start; t < end; t++) {
    var best = -3.0e38;
    for (var h = 0u; h < P.heads; h++) {
      let x = (b * P.heads + h) * P.rows + r;
      best = max(best, logits[x * P.keySeq + t] - lse[x]);
    }
    sum += exp(best);
  }
  scores[g] = sum;
}
`;
}
