/**
 * Observation-window scoring, pass 3 of 3 (WGSL): the per-KV-head key scores of core's
 * `observerScores` (draft-kv `observer-scores.ts`), one thread per key j < scoredKeys:
 *
 *   p_ρj = e^{scale · q_ρ · k_j − lse_ρ}                  (j < limit(i); lse from pass 2)
 *   s_j  = reduce_{ρ = (r, i)} p_ρj                       max | mean (÷ groupSize · observers) | sum
 *
 * The softmax runs over every visible key (window keys included, as in pass 1) and only the first
 * `scoredKeys` columns are reduced, like `compress_kv`'s `softmax(...)[..., :M − W']`. A key no
 * observer sees scores 0 (the CPU's `−∞ → 0`). Observer weights (SpecPC) are not supported here.
 */
import { OBSERVER_ROWS, OBSERVER_TILE, observerDotsWgsl, observerParamsStruct } from './observer-partials-wgsl.js';

/** Reduction codes of the `reduction` uniform field. */
export const REDUCTION_CODES = { max: 0, mean: 1, sum: 2 } as const;

/** Generates the WGSL of pass 3 (per-key scores `[slots, scored]`). */
export function observerScoresWgsl(o: { headDim: number }): string {
  return /* wgsl */ `
const D: u32 = ${o.headDim}u;
const NT: u32 = ${OBSERVER_TILE}u;
const ROWS: u32 = ${OBSERVER_ROWS}u;
${observerParamsStruct}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;

var<workgroup> qs: array<f32, ${OBSERVER_ROWS * o.headDim}>;

@compute @workgroup_size(${OBSERVER_TILE})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  let scoredTiles = (P.scored + NT - 1u) / NT;
  if (linear >= P.slots * scoredTiles) { return; }
  let slot = linear / scoredTiles;
  let key = (linear % scoredTiles) * NT + lid;
  let rows = P.groupSize * P.observerCount;
  var total = 0.0;
  for (var row0 = 0u; row0 < rows; row0 += ROWS) {
${observerDotsWgsl()}
    for (var r = 0u; r < ROWS; r++) {
      let row = row0 + r;
      let i = P.observerFirst + row % P.observerCount;
      if (row < rows && key < min(P.keySeq, P.queryOffset + i + 1u)) {
        let p = exp(dots[r] * P.scale - lse[slot * rows + row]);
        if (P.reduction == 0u) { total = max(total, p); } else { total += p; }
      }
    }
  }
  if (key < P.scored) { scores[slot * P.scored + key] = total / P.divisor; }
}
`;
}
