/**
 * Observation-window scoring, pass 1 of 3 (WGSL): per KV slot, tile of 64 keys and observer row
 * ρ = (query head r of the GQA group, observer i), the tile's share of that row's softmax
 * normaliser:
 *
 *   z_ρj = scale · q_{r, i} · k_j                      for j in the tile with j < limit(i) = pos(i) + 1
 *   partial[ρ, tile] = (m, l) = (max_j z_ρj,  Σ_j e^{z_ρj − m})     ((−3e38, 0) when no key is visible)
 *
 * Keys stream once per pass (one thread per key, observer rows staged `ROWS` at a time in
 * workgroup memory), so the scratch is `rows × ⌈keySeq / 64⌉` pairs per KV slot — never
 * rows × keySeq logits. {@link observerLseWgsl} folds the partials into each row's log-sum-exp
 * and {@link observerScoresWgsl} turns them into the per-key scores of `observerScores`. Key j of
 * the chunk's KV slot s is row `s · keyStride + j` of k (a KV cache's capacity between slots).
 */

/** Uniform parameter block shared by the three observer kernels (16 × 4 bytes; `scale`, `divisor` are f32). */
export const OBSERVER_PARAMS = [
  'querySeq', 'keySeq', 'queryOffset', 'groupSize',
  'slots', 'tilesX', 'scale', 'observerFirst',
  'observerCount', 'scored', 'tiles', 'reduction',
  'divisor', 'keyStride', 'pad1', 'pad2',
] as const;

/** The f32 fields of {@link OBSERVER_PARAMS}. */
export const OBSERVER_FLOATS = ['scale', 'divisor'] as const;

/** Keys per workgroup (one thread each) of the observer kernels. */
export const OBSERVER_TILE = 64;

/** Observer rows staged in workgroup memory at a time (and accumulated per thread). */
export const OBSERVER_ROWS = 8;

/** The WGSL struct of {@link OBSERVER_PARAMS}. */
export const observerParamsStruct = /* wgsl */ `
struct Params {
  querySeq: u32, keySeq: u32, queryOffset: u32, groupSize: u32,
  slots: u32, tilesX: u32, scale: f32, observerFirst: u32,
  observerCount: u32, scored: u32, tiles: u32, reduction: u32,
  divisor: f32, keyStride: u32, pad1: u32, pad2: u32,
}`;

/**
 * WGSL that stages observer rows `row0 .. row0 + ROWS` of the slot into `qs` and leaves
 * `acc0..acc{ROWS−1}` = q_ρ · k_key (0 for rows past the end or a key past `keySeq`).
 * Expects `slot`, `key`, `lid`, `rows`, `row0` in scope.
 */
export function observerDotsWgsl(): string {
  const rows = Array.from({ length: OBSERVER_ROWS }, (_, r) => r);
  return /* wgsl */ `
    workgroupBarrier();
    for (var e = lid; e < ROWS * D; e += NT) {
      let rr = row0 + e / D;
      var x = 0.0;
      if (rr < rows) {
        let head = rr / P.observerCount;
        let i = P.observerFirst + rr % P.observerCount;
        x = q[((slot * P.groupSize + head) * P.querySeq + i) * D + e % D];
      }
      qs[e] = x;
    }
    workgroupBarrier();
${rows.map((r) => `    var acc${r} = 0.0;`).join('\n')}
    if (key < P.keySeq) {
      let kBase = (slot * P.keyStride + key) * D;
      for (var c = 0u; c < D; c++) {
        let kc = k[kBase + c];
${rows.map((r) => `        acc${r} += qs[${r}u * D + c] * kc;`).join('\n')}
      }
    }
    var dots = array<f32, ${OBSERVER_ROWS}>(${rows.map((r) => `acc${r}`).join(', ')});`;
}

/** Generates the WGSL of pass 1 (per-tile softmax partials of every observer row). */
export function observerPartialsWgsl(o: { headDim: number }): string {
  return /* wgsl */ `
const D: u32 = ${o.headDim}u;
const NT: u32 = ${OBSERVER_TILE}u;
const ROWS: u32 = ${OBSERVER_ROWS}u;
const NEG: f32 = -3.0e38;
${observerParamsStruct}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read_write> partials: array<vec2<f32>>;

var<workgroup> qs: array<f32, ${OBSERVER_ROWS * o.headDim}>;
var<workgroup> red: array<f32, ${OBSERVER_ROWS * OBSERVER_TILE}>;
var<workgroup> rowMax: array<f32, ${OBSERVER_ROWS}>;

@compute @workgroup_size(${OBSERVER_TILE})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.tiles) { return; }
  let slot = linear / P.tiles;
  let tile = linear % P.tiles;
  let key = tile * NT + lid;
  let rows = P.groupSize * P.observerCount;
  for (var row0 = 0u; row0 < rows; row0 += ROWS) {
${observerDotsWgsl()}
    var z = array<f32, ${OBSERVER_ROWS}>();
    for (var r = 0u; r < ROWS; r++) {
      let i = P.observerFirst + (row0 + r) % P.observerCount;
      let limit = min(P.keySeq, P.queryOffset + i + 1u);
      z[r] = select(NEG, dots[r] * P.scale, key < limit && row0 + r < rows);
      red[r * NT + lid] = z[r];
    }
    workgroupBarrier();
    if (lid < ROWS) {
      var m = NEG;
      for (var t = 0u; t < NT; t++) { m = max(m, red[lid * NT + t]); }
      rowMax[lid] = m;
    }
    workgroupBarrier();
    for (var r = 0u; r < ROWS; r++) {
      red[r * NT + lid] = select(0.0, exp(z[r] - rowMax[r]), z[r] > NEG);
    }
    workgroupBarrier();
    if (lid < ROWS && row0 + lid < rows) {
      var l = 0.0;
      for (var t = 0u; t < NT; t++) { l += red[lid * NT + t]; }
      partials[(slot * rows + row0 + lid) * P.tiles + tile] = vec2<f32>(rowMax[lid], l);
    }
  }
}
`;
}
