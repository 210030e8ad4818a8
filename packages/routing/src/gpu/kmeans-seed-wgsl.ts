/**
 * k-means++ seeding on unit rows in WGSL (CPU: `spherical-kmeans.ts#seedPlusPlus`), every slot of
 * the chunk side by side, over its normalised subsample s_0 … s_{n−1}:
 *
 *   pick_0 = ⌊u_0·n⌋;   for c ≥ 1 with δ_i = min_{c' < c} max(0, 1 − s_i·μ_c'):
 *   pick_c = the first i with Σ_{i' ≤ i} δ_i'² > u_c · Σ_i δ_i²   (⌊u_c·n⌋ when that sum is 0)
 *   μ_c = s_{pick_c} / ‖s_{pick_c}‖
 *
 * The uniforms u_c are the CPU's `Rng` draws for the same seed (computed on the host from the seed
 * alone: `⌊u·n⌋` as u32 and u as f32), so the GPU makes the CPU's draws; the distances and sums
 * are f32 here, summed per thread range then scanned (f64 and in row order on the CPU), so a draw that lands within rounding of a boundary between two
 * rows may pick the neighbour (see the README).
 *
 * Each step c is two dispatches, recorded C times in one pass on the same bind groups:
 * `seedPickWgsl` (one workgroup per slot: pick_c from the distances, μ_c written to the centroids
 * and to `current`) and `seedDistanceWgsl` (one thread per (slot, row): δ_i ← min(δ_i, 1 − s_i·μ_c),
 * each dot product over channels 0 … D−1 in order; it also advances the step counter the pick
 * reads). Finding a pick: every thread sums the δ² of its contiguous ⌈n / 256⌉ rows, one
 * workgroup scan of those sums gives the total and the thread whose rows cross the goal, which
 * walks them. (One workgroup per slot doing both parts took 39 ms at S = 64k, C = 256, n = 4096,
 * 32 slots on the H100: each step re-read the slot's 2 MiB subsample through one SM.)
 */

/** Uniform parameter block of the seeding kernels. */
export const SEED_PARAMS = ['slots', 'sample', 'clusters', 'slotBase', 'tilesX', 'pad0', 'pad1', 'pad2'] as const;

/** Threads per workgroup of the seeding kernels. */
export const SEED_THREADS = 256;

const params = 'struct Params { slots: u32, sample: u32, clusters: u32, slotBase: u32, tilesX: u32, pad0: u32, pad1: u32, pad2: u32 }';

/**
 * Step c's pick, one workgroup per slot (c from `step[0]`; step 0 also sets every δ to +∞).
 * Bindings: 1 subsample rows (`[slot][n][D]`), 2 draw indices, 3 draw values, 4 distances δ,
 * 5 centroids (call-wide), 6 `current` (`[slot][D]`: μ_c for the distance pass), 7 the step counter.
 */
export function seedPickWgsl(dim: number): string {
  return /* wgsl */ `
${params}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> sample: array<f32>;
@group(0) @binding(2) var<storage, read> drawIndex: array<u32>;
@group(0) @binding(3) var<storage, read> drawValue: array<f32>;
@group(0) @binding(4) var<storage, read_write> distance: array<f32>;
@group(0) @binding(5) var<storage, read_write> centroids: array<f32>;
@group(0) @binding(6) var<storage, read_write> currentOut: array<f32>;
@group(0) @binding(7) var<storage, read> step: array<u32>;

const NT: u32 = ${SEED_THREADS}u;
const D: u32 = ${dim}u;
const NONE: u32 = 0xffffffffu;
const FAR: f32 = 3.0e38;

var<workgroup> partial: array<f32, ${SEED_THREADS}>;
var<workgroup> picks: array<u32, ${SEED_THREADS}>;
var<workgroup> current: array<f32, ${dim}>;
var<workgroup> broadcastF: f32;
var<workgroup> broadcastU: u32;

fn sumAll(v: f32, lid: u32) -> f32 {
  partial[lid] = v;
  workgroupBarrier();
  for (var width = NT / 2u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] += partial[lid + width]; }
    workgroupBarrier();
  }
  if (lid == 0u) { broadcastF = partial[0]; }
  return workgroupUniformLoad(&broadcastF);
}

fn minAll(v: u32, lid: u32) -> u32 {
  picks[lid] = v;
  workgroupBarrier();
  for (var width = NT / 2u; width > 0u; width = width / 2u) {
    if (lid < width) { picks[lid] = min(picks[lid], picks[lid + width]); }
    workgroupBarrier();
  }
  if (lid == 0u) { broadcastU = picks[0]; }
  return workgroupUniformLoad(&broadcastU);
}

@compute @workgroup_size(${SEED_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let slot = wid.x;
  if (slot >= P.slots) { return; }
  let n = P.sample;
  let rows = slot * n;
  let draws = (P.slotBase + slot) * P.clusters;
  if (lid == 0u) { broadcastU = step[0]; }
  let c = workgroupUniformLoad(&broadcastU);
  if (c >= P.clusters) { return; }
  var chosen = min(drawIndex[draws + c], n - 1u);
  if (c == 0u) {
    for (var i = lid; i < n; i += NT) { distance[rows + i] = FAR; }
  } else {
    // Thread t owns rows [t·per, (t + 1)·per): one scan of the threads' sums of δ² gives the
    // total and, for the thread whose range crosses goal = u_c · total, where its rows start.
    let per = (n + NT - 1u) / NT;
    let first = min(lid * per, n);
    let last = min(first + per, n);
    var own = 0.0;
    for (var i = first; i < last; i++) { let d = distance[rows + i]; own += d * d; }
    partial[lid] = own;
    workgroupBarrier();
    for (var offset = 1u; offset < NT; offset = offset * 2u) {
      var add = 0.0;
      if (lid >= offset) { add = partial[lid - offset]; }
      workgroupBarrier();
      partial[lid] += add;
      workgroupBarrier();
    }
    let inclusive = partial[lid];
    var before = 0.0;
    if (lid > 0u) { before = partial[lid - 1u]; }
    if (lid == 0u) { broadcastF = partial[NT - 1u]; }
    let total = workgroupUniformLoad(&broadcastF);
    if (total > 0.0) {
      let goal = drawValue[draws + c] * total;
      var found = NONE;
      if (first < last && inclusive > goal && before <= goal) {
        // The first of this thread's rows where the running sum passes the goal (its last row
        // if rounding keeps the running sum at or below the goal).
        found = last - 1u;
        var running = before;
        for (var i = first; i < last; i++) {
          let d = distance[rows + i];
          running += d * d;
          if (running > goal) { found = i; break; }
        }
      }
      let picked = minAll(found, lid);
      chosen = select(picked, n - 1u, picked == NONE);
    }
  }
  // μ_c = the chosen row, normalised.
  for (var e = lid; e < D; e += NT) { current[e] = sample[(rows + chosen) * D + e]; }
  workgroupBarrier();
  var sq = 0.0;
  for (var e = lid; e < D; e += NT) { sq += current[e] * current[e]; }
  let norm = sqrt(sumAll(sq, lid));
  let inv = select(1.0, 1.0 / norm, norm > 1e-12);
  for (var e = lid; e < D; e += NT) {
    let value = current[e] * inv;
    centroids[((P.slotBase + slot) * P.clusters + c) * D + e] = value;
    currentOut[slot * D + e] = value;
  }
}
`;
}

/**
 * Step c's distances, one thread per (slot, row): δ_i ← min(δ_i, max(0, 1 − s_i·μ_c)) from the
 * channel-major subsample (`[slot][D][n]`, coalesced) and `current`; thread 0 of the first
 * workgroup advances the step counter. Bindings: 1 subsample (channel-major), 2 `current`,
 * 3 distances, 4 the step counter.
 */
export function seedDistanceWgsl(dim: number): string {
  return /* wgsl */ `
${params}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> sampleT: array<f32>;
@group(0) @binding(2) var<storage, read> current: array<f32>;
@group(0) @binding(3) var<storage, read_write> distance: array<f32>;
@group(0) @binding(4) var<storage, read_write> step: array<u32>;

const D: u32 = ${dim}u;

@compute @workgroup_size(${SEED_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear == 0u && lid == 0u) { step[0] = step[0] + 1u; }
  let blocks = (P.sample + ${SEED_THREADS - 1}u) / ${SEED_THREADS}u;
  let slot = linear / blocks;
  let i = (linear % blocks) * ${SEED_THREADS}u + lid;
  if (slot >= P.slots || i >= P.sample) { return; }
  var dot = 0.0;
  for (var e = 0u; e < D; e++) { dot += sampleT[(slot * D + e) * P.sample + i] * current[slot * D + e]; }
  let d = max(0.0, 1.0 - dot);
  let at = slot * P.sample + i;
  distance[at] = min(distance[at], d);
}
`;
}
