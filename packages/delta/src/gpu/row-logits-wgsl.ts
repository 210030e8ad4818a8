/**
 * Kernel: the scaled decode logits a selection layer scores, for a group of query rows.
 *
 *   logit[slot][r][t] = (scale · q_{slot, i}) · k_{slot / G, t}     for t < visible(i) = queryOffset + i + 1
 *
 * with i = rowStart + r (causal: a query sees the keys up to its own position). The query row is
 * scaled first and the dot product accumulated in float32, as `decode-scores.ts` does on the CPU
 * (which accumulates in float64, so logits agree to ~1e-6 relative). One workgroup per (query
 * slot, row, tile of 64 keys), one key per thread; tiles past the row's last visible key exit.
 * Entries at t ≥ visible are not written (no consumer reads them). Key t of the chunk's KV slot s
 * is row `s · keyStride + t` of k (a KV cache's capacity between slots); the logits stay
 * `[slot][row][keySeq]`.
 */

/** Uniform parameter block of the logits kernel (12 × 4 bytes). */
export const ROW_LOGITS_PARAMS = [
  'querySeq', 'keySeq', 'queryOffset', 'rowStart',
  'rows', 'slots', 'groupSize', 'keyTiles',
  'outSlotBase', 'tilesX', 'scale', 'keyStride',
] as const;

/** Keys per workgroup of the logits kernel. */
export const ROW_LOGITS_KEYS = 64;

/** Generates the WGSL of the logits kernel for a head dim. */
export function rowLogitsWgsl(headDim: number): string {
  return /* wgsl */ `
const D: u32 = ${headDim}u;
const NT: u32 = ${ROW_LOGITS_KEYS}u;

struct Params {
  querySeq: u32, keySeq: u32, queryOffset: u32, rowStart: u32,
  rows: u32, slots: u32, groupSize: u32, keyTiles: u32,
  outSlotBase: u32, tilesX: u32, scale: f32, keyStride: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;

var<workgroup> qs: array<f32, ${headDim}>;

@compute @workgroup_size(${ROW_LOGITS_KEYS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.rows * P.keyTiles) { return; }
  let tile = linear % P.keyTiles;
  let sr = linear / P.keyTiles;
  let slot = sr / P.rows;
  let r = sr % P.rows;
  let i = P.rowStart + r;
  let visible = P.queryOffset + i + 1u;
  if (tile * NT >= visible) { return; }
  for (var e = lid; e < D; e += NT) { qs[e] = q[(slot * P.querySeq + i) * D + e] * P.scale; }
  workgroupBarrier();
  let t = tile * NT + lid;
  if (t < visible) {
    let at = ((slot / P.groupSize) * P.keyStride + t) * D;
    var acc = 0.0;
    for (var e = 0u; e < D; e++) { acc = fma(qs[e], k[at + e], acc); }
    logits[((P.outSlotBase + slot) * P.rows + r) * P.keySeq + t] = acc;
  }
}
`;
}
