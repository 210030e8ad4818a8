/**
 * Observation-window scoring, pass 2 of 3 (WGSL): each observer row's log-sum-exp over every key
 * it sees, from the per-tile partials of {@link observerPartialsWgsl}:
 *
 *   (m, l) ← (max(m, m_t), l · e^{m − max} + l_t · e^{m_t − max})   over tiles t
 *   lse_ρ  = m + ln l
 *
 * One thread per (KV slot, observer row). Every observer sees at least key 0, so `l > 0`.
 */
import { OBSERVER_TILE, observerParamsStruct } from './observer-partials-wgsl.js';

/** Generates the WGSL of pass 2 (partials → per-row log-sum-exp). */
export function observerLseWgsl(): string {
  return /* wgsl */ `
const NEG: f32 = -3.0e38;
${observerParamsStruct}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> partials: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read_write> lse: array<f32>;

@compute @workgroup_size(${OBSERVER_TILE})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let rows = P.groupSize * P.observerCount;
  let index = (wid.x + wid.y * P.tilesX) * ${OBSERVER_TILE}u + lid;
  if (index >= P.slots * rows) { return; }
  var m = NEG;
  var l = 0.0;
  for (var t = 0u; t < P.tiles; t++) {
    let part = partials[index * P.tiles + t];
    if (part.y > 0.0) {
      let mNew = max(m, part.x);
      l = l * exp(m - mNew) + part.y * exp(part.x - mNew);
      m = mNew;
    }
  }
  lse[index] = m + log(l);
}
`;
}
