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
 * Each step c is one dispatch (`seedStepWgsl`), recorded C times in one pass on two bind groups
 * that alternate: δ and the step counter are double-buffered, so step c reads the distances of
 * steps < c (`before`) and writes its own (`after`) with no workgroup waiting on another. A
 * workgroup owns one block of 256 rows of one slot; every workgroup of the slot finds pick_c from
 * `before` by the same arithmetic (so all agree), then updates its block:
 * δ_i ← min(δ_i, max(0, 1 − s_i·μ_c)), each dot product over channels 0 … D−1 in order. Finding
 * a pick: every thread sums the δ² of its contiguous ⌈n / 256⌉ rows, one workgroup scan of those
 * sums gives the total and the thread whose rows cross the goal, which walks them. (History on the
 * H100 at S = 64k, C = 256, n = 4096, 32 slots: one workgroup per slot doing both parts, 39 ms,
 * each step re-reading the slot's 2 MiB subsample through one SM; a pick dispatch per slot then a
 * distance dispatch over all SMs, 12.5 ms, mostly the 2C − 1 dispatch gaps.)
 */

/** Uniform parameter block of the seeding kernels. */
export const SEED_PARAMS = ['slots', 'sample', 'clusters', 'slotBase', 'tilesX', 'pad0', 'pad1', 'pad2'] as const;

/** Threads per workgroup of the seeding kernels. */
export const SEED_THREADS = 256;

const params = 'struct Params { slots: u32, sample: u32, clusters: u32, slotBase: u32, tilesX: u32, pad0: u32, pad1: u32, pad2: u32 }';

/**
 * Step c of the seeding (c from `stepIn[0]`), one workgroup per (slot, block of 256 rows): pick_c
 * from `before` (ignored at step 0), μ_c = the chosen row normalised (block 0 writes it to the
 * centroids), then the block's `after` = min(`before`, max(0, 1 − s_i·μ_c)) (`before` taken as +∞
 * at step 0; nothing at the last step, which only picks). Workgroup 0 writes `stepOut[0] = c + 1`.
 * Bindings: 1 subsample channel-major (`[slot][D][n]`), 2 draw indices, 3 draw values,
 * 4 `before`, 5 `after`, 6 centroids (call-wide), 7 `stepIn`, 8 `stepOut`.
 */
export function seedStepWgsl(dim: number): string {
  return /* wgsl */ `
${params}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> sampleT: array<f32>;
@group(0) @binding(2) var<storage, read> drawIndex: array<u32>;
@group(0) @binding(3) var<storage, read> drawValue: array<f32>;
@group(0) @binding(4) var<storage, read> before: array<f32>;
@group(0) @binding(5) var<storage, read_write> after: array<f32>;
@group(0) @binding(6) var<storage, read_write> centroids: array<f32>;
@group(0) @binding(7) var<storage, read> stepIn: array<u32>;
@group(0) @binding(8) var<storage, read_write> stepOut: array<u32>;

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
  let linear = wid.x + wid.y * P.tilesX;
  let n = P.sample;
  let blocks = (n + NT - 1u) / NT;
  let slot = linear / blocks;
  let block = linear % blocks;
  if (slot >= P.slots) { return; }
  if (lid == 0u) { broadcastU = stepIn[0]; }
  let c = workgroupUniformLoad(&broadcastU);
  if (c >= P.clusters) { return; }
  if (linear == 0u && lid == 0u) { stepOut[0] = c + 1u; }
  let last = c + 1u == P.clusters;
  if (last && block != 0u) { return; }
  let rows = slot * n;
  let draws = (P.slotBase + slot) * P.clusters;
  var chosen = min(drawIndex[draws + c], n - 1u);
  if (c > 0u) {
    // Thread t owns rows [t·per, (t + 1)·per): one scan of the threads' sums of δ² gives the
    // total and, for the thread whose range crosses goal = u_c · total, where its rows start.
    let per = (n + NT - 1u) / NT;
    let first = min(lid * per, n);
    let end = min(first + per, n);
    var own = 0.0;
    for (var i = first; i < end; i++) { let d = before[rows + i]; own += d * d; }
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
    var prior = 0.0;
    if (lid > 0u) { prior = partial[lid - 1u]; }
    if (lid == 0u) { broadcastF = partial[NT - 1u]; }
    let total = workgroupUniformLoad(&broadcastF);
    if (total > 0.0) {
      let goal = drawValue[draws + c] * total;
      var found = NONE;
      if (first < end && inclusive > goal && prior <= goal) {
        // The first of this thread's rows where the running sum passes the goal (its last row
        // if rounding keeps the running sum at or below the goal).
        found = end - 1u;
        var running = prior;
        for (var i = first; i < end; i++) {
          let d = before[rows + i];
          running += d * d;
          if (running > goal) { found = i; break; }
        }
      }
      let picked = minAll(found, lid);
      chosen = select(picked, n - 1u, picked == NONE);
    }
  }
  // μ_c = the chosen row, normalised.
  for (var e = lid; e < D; e += NT) { current[e] = sampleT[(slot * D + e) * n + chosen]; }
  workgroupBarrier();
  var sq = 0.0;
  for (var e = lid; e < D; e += NT) { sq += current[e] * current[e]; }
  let norm = sqrt(sumAll(sq, lid));
  let inv = select(1.0, 1.0 / norm, norm > 1e-12);
  for (var e = lid; e < D; e += NT) {
    let value = current[e] * inv;
    current[e] = value;
    if (block == 0u) { centroids[((P.slotBase + slot) * P.clusters + c) * D + e] = value; }
  }
  if (last) { return; }
  workgroupBarrier();
  let i = block * NT + lid;
  if (i >= n) { return; }
  var dot = 0.0;
  for (var e = 0u; e < D; e++) { dot += sampleT[(slot * D + e) * n + i] * current[e]; }
  let at = rows + i;
  after[at] = min(select(before[at], FAR, c == 0u), max(0.0, 1.0 - dot));
}
`;
}
