/**
 * Merge of two attentions over disjoint key sets by their log-sum-exp (the split-softmax
 * identity), in place into the first:
 *
 *   m = max(lse_a, lse_b);  w_a = e^{lse_a − m};  w_b = e^{lse_b − m}
 *   out = (w_a · out_a + w_b · out_b) / (w_a + w_b);   lse = m + ln(w_a + w_b)
 *
 * An empty part has lse −∞ and weight 0. One thread per query row (it owns the row's lse, so no
 * other thread reads it after the write).
 */

/** Uniform parameter block of the merge kernel. */
export const MERGE_PARAMS = ['rows', 'valueDim', 'tilesX', 'pad0'] as const;

/** Threads per workgroup of the merge kernel. */
export const MERGE_THREADS = 256;

/** Generates the WGSL of the merge kernel. */
export function mergeAttentionWgsl(): string {
  return /* wgsl */ `
struct Params { rows: u32, valueDim: u32, tilesX: u32, pad0: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> outA: array<f32>;
@group(0) @binding(2) var<storage, read_write> lseA: array<f32>;
@group(0) @binding(3) var<storage, read> outB: array<f32>;
@group(0) @binding(4) var<storage, read> lseB: array<f32>;

@compute @workgroup_size(${MERGE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * P.tilesX) * ${MERGE_THREADS}u + lid;
  if (row >= P.rows) { return; }
  let a = lseA[row];
  let b = lseB[row];
  let liveA = a > -3.0e38;
  let liveB = b > -3.0e38;
  if (!liveB) { return; }
  if (!liveA) {
    lseA[row] = b;
    for (var c = 0u; c < P.valueDim; c++) { outA[row * P.valueDim + c] = outB[row * P.valueDim + c]; }
    return;
  }
  let m = max(a, b);
  let wa = exp(a - m);
  let wb = exp(b - m);
  let total = wa + wb;
  for (var c = 0u; c < P.valueDim; c++) {
    let at = row * P.valueDim + c;
    outA[at] = (wa * outA[at] + wb * outB[at]) / total;
  }
  lseA[row] = m + log(total);
}
`;
}
