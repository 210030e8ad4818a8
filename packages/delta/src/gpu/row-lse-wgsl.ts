/**
 * Kernel: the log-sum-exp of each query row's logits over its visible keys (DELTA normalises
 * every head's logits into probabilities before taking the maximum over heads).
 *
 *   lse[x] = m + ln Σ_{t < visible} e^{logit[x][t] − m},   m = max_t logit[x][t]
 *
 * One workgroup of 64 threads per (query slot, row): strided partial maxima and sums, then
 * workgroup reductions.
 */

/** Uniform parameter block of the lse kernel (8 × 4 bytes). */
export const ROW_LSE_PARAMS = ['count', 'rows', 'rowStart', 'queryOffset', 'keySeq', 'tilesX', 'pad0', 'pad1'] as const;

/** Generates the WGSL of the lse kernel. */
export function rowLseWgsl(): string {
  return /* wgsl */ `
const NT: u32 = 64u;

struct Params { count: u32, rows: u32, rowStart: u32, queryOffset: u32, keySeq: u32, tilesX: u32, pad0: u32, pad1: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;

var<workgroup> red: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let x = wid.x + wid.y * P.tilesX;
  if (x >= P.count) { return; }
  let visible = P.queryOffset + P.rowStart + x % P.rows + 1u;
  let base = x * P.keySeq;
  var m = -3.0e38;
  for (var t = lid; t < visible; t += NT) { m = max(m, logits[base + t]); }
  red[lid] = m;
  workgroupBarrier();
  for (var w = NT / 2u; w > 0u; w = w / 2u) {
    if (lid < w) { red[lid] = max(red[lid], red[lid + w]); }
    workgroupBarrier();
  }
  let big = red[0];
  workgroupBarrier();
  var sum = 0.0;
  for (var t = lid; t < visible; t += NT) { sum += exp(logits[base + t] - big); }
  red[lid] = sum;
  workgroupBarrier();
  for (var w = NT / 2u; w > 0u; w = w / 2u) {
    if (lid < w) { red[lid] = red[lid] + red[lid + w]; }
    workgroupBarrier();
  }
  if (lid == 0u) { lse[x] = big + log(red[0]); }
}
`;
}
