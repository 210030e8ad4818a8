/**
 * Random KV scores in WGSL (kvpress RandomPress, `kv-scorers.ts` `random`): the CPU draws
 * `out[i] = rng.next()` for i = row · scored + j in order from core's `Rng` (mulberry32), whose
 * state after i + 1 draws is `(seed ^ 0x9e3779b9) + (i + 1) · 0x6d2b79f5 (mod 2³²)` — counter
 * based, so every score is computed independently:
 *
 *   t = state_i;  t = (t ^ t >> 15) · (t | 1);  t ^= t + (t ^ t >> 7) · (t | 61);  u = t ^ t >> 14
 *   s_i = round_f32(u) · 2⁻³²
 *
 * The CPU stores `u / 2³²` in a Float32Array, i.e. rounds u to float32 to nearest, ties to even;
 * WGSL leaves the rounding of a u32 → f32 conversion to the implementation, so the kernel rounds
 * by hand. Equal rounded scores then tie exactly as on the CPU (the larger index wins).
 */

/** Uniform parameter block of the random-score kernel. */
export const RANDOM_PARAMS = ['slots', 'scored', 'slot0', 'seed', 'tilesX', 'pad0', 'pad1', 'pad2'] as const;

/** Threads per workgroup of the random-score kernel. */
export const RANDOM_THREADS = 256;

/** Generates the WGSL of the random-score kernel. */
export function randomScoresWgsl(): string {
  return /* wgsl */ `
struct Params {
  slots: u32, scored: u32, slot0: u32, seed: u32,
  tilesX: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> scores: array<f32>;

// u as float32, rounded to nearest with ties to even (what JS does storing u / 2^32 in a Float32Array).
fn roundToF32(u: u32) -> f32 {
  if (u < 0x1000000u) { return f32(u); }
  let shift = 31u - countLeadingZeros(u) - 23u;
  var m = u >> shift;
  let rest = u & ((1u << shift) - 1u);
  let half = 1u << (shift - 1u);
  if (rest > half || (rest == half && (m & 1u) == 1u)) { m += 1u; }
  return f32(m) * exp2(f32(shift));
}

@compute @workgroup_size(${RANDOM_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let index = (wid.x + wid.y * P.tilesX) * ${RANDOM_THREADS}u + lid;
  if (index >= P.slots * P.scored) { return; }
  let draw = P.slot0 * P.scored + index;
  var t = (P.seed ^ 0x9e3779b9u) + (draw + 1u) * 0x6d2b79f5u;
  t = (t ^ (t >> 15u)) * (t | 1u);
  t = t ^ (t + (t ^ (t >> 7u)) * (t | 61u));
  let u = t ^ (t >> 14u);
  scores[index] = roundToF32(u) * exp2(-32.0);
}
`;
}
