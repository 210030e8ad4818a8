/**
 * Symmetric 1-D pooling of per-key scores in WGSL, the SnapKV / SpecKV / PyramidKV smoothing of
 * `pool-scores.ts` (`F.max_pool1d` / `F.avg_pool1d`, odd kernel k, padding k // 2, stride 1):
 *
 *   max: p_j = max_{j' ∈ [j − k//2, j + k//2] ∩ [0, n)} s_j'       (implicit −∞ padding)
 *   avg: p_j = (Σ_{j' ∈ same window} s_j') / k                      (zero padding counted)
 *
 * One thread per (KV slot, key); each reads its k neighbours (k is small: 5 or 7).
 */

/** Uniform parameter block of the pooling kernel. */
export const POOL_SCORE_PARAMS = ['slots', 'scored', 'half', 'average', 'tilesX', 'pad0', 'pad1', 'pad2'] as const;

/** Threads per workgroup of the pooling kernel. */
export const POOL_SCORE_THREADS = 256;

/** Generates the WGSL of the pooling kernel. */
export function poolScoresWgsl(): string {
  return /* wgsl */ `
struct Params {
  slots: u32, scored: u32, half: u32, average: u32,
  tilesX: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> pooled: array<f32>;

@compute @workgroup_size(${POOL_SCORE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let index = (wid.x + wid.y * P.tilesX) * ${POOL_SCORE_THREADS}u + lid;
  if (index >= P.slots * P.scored) { return; }
  let j = index % P.scored;
  let base = index - j;
  let first = select(0u, j - P.half, j >= P.half);
  let last = min(P.scored - 1u, j + P.half);
  var m = -3.0e38;
  var sum = 0.0;
  for (var t = first; t <= last; t++) {
    let s = scores[base + t];
    m = max(m, s);
    sum += s;
  }
  pooled[index] = select(m, sum / f32(2u * P.half + 1u), P.average == 1u);
}
`;
}
