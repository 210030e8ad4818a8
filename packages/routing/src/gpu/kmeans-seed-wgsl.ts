/**
 * k-means++ seeding on unit rows in WGSL (CPU: `spherical-kmeans.ts#seedPlusPlus`), one
 * workgroup per slot (every slot of the chunk in one dispatch) over its normalised subsample
 * s_0 … s_{n−1}:
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
 * Cost per slot: C sequential steps, each one pass over the n distances (every thread sums its
 * contiguous ⌈n / 256⌉ rows, one workgroup scan of those sums gives the total and the thread
 * whose rows hold the pick, which walks them) and n·D multiply-adds for the new centroid's
 * distances. (A tiled scan over all n rows cost ~16 barriers per 256 rows per step: 41 of the
 * k-means' 54 ms at S = 64k, C = 256, n = 4096 on the H100.) The subsample is read
 * channel-major (`sampleT`), so the 256 threads' row reads of one channel are one contiguous
 * run (the row-major read put consecutive threads D floats apart); the accumulation order is
 * unchanged (channel 0 … D−1), so are the distances and picks.
 */

/** Uniform parameter block of the seeding kernel. */
export const SEED_PARAMS = ['slots', 'sample', 'clusters', 'slotBase'] as const;

/** Threads per workgroup of the seeding kernel. */
export const SEED_THREADS = 256;

/** Rows whose distances one thread updates together (independent loads in flight). */
export const SEED_ROWS_PER_THREAD = 16;

/** Generates the WGSL of the seeding kernel for rows of `dim` floats. */
export function kmeansSeedWgsl(dim: number): string {
  return /* wgsl */ `
struct Params { slots: u32, sample: u32, clusters: u32, slotBase: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> sample: array<f32>;
@group(0) @binding(2) var<storage, read> drawIndex: array<u32>;
@group(0) @binding(3) var<storage, read> drawValue: array<f32>;
@group(0) @binding(4) var<storage, read_write> distance: array<f32>;
@group(0) @binding(5) var<storage, read_write> centroids: array<f32>;
// The subsample channel-major, \`[slot][D][sample]\`: thread i's reads of its rows are coalesced.
@group(0) @binding(6) var<storage, read> sampleT: array<f32>;

const NT: u32 = ${SEED_THREADS}u;
const D: u32 = ${dim}u;
const NONE: u32 = 0xffffffffu;
const ROWS: u32 = ${SEED_ROWS_PER_THREAD}u;

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
  let n = P.sample;
  let rows = slot * n;
  let draws = (P.slotBase + slot) * P.clusters;
  for (var c = 0u; c < P.clusters; c++) {
    var chosen = min(drawIndex[draws + c], n - 1u);
    if (c > 0u) {
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
      current[e] = current[e] * inv;
      centroids[((P.slotBase + slot) * P.clusters + c) * D + e] = current[e];
    }
    workgroupBarrier();
    // ROWS rows per thread at once (i = start + k·NT + lid): ROWS independent coalesced loads per
    // channel keep the memory system busy; each row's sum still runs over channels 0 … D−1.
    for (var start = 0u; start < n; start += NT * ROWS) {
      var dots: array<f32, ROWS>;
      for (var k = 0u; k < ROWS; k++) { dots[k] = 0.0; }
      for (var e = 0u; e < D; e++) {
        let ce = current[e];
        let column = (slot * D + e) * n;
        for (var k = 0u; k < ROWS; k++) { dots[k] += sampleT[column + min(start + k * NT + lid, n - 1u)] * ce; }
      }
      for (var k = 0u; k < ROWS; k++) {
        let i = start + k * NT + lid;
        if (i >= n) { break; }
        let d = max(0.0, 1.0 - dots[k]);
        if (c == 0u || d < distance[rows + i]) { distance[rows + i] = d; }
      }
    }
    workgroupBarrier();
  }
}
`;
}
