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
 * are f32 here (f64 on the CPU), so a draw that lands within rounding of a boundary between two
 * rows may pick the neighbour (see the README).
 *
 * Cost per slot: C sequential steps, each a pass over the n distances (sum, then a tiled scan up
 * to the pick) and n·D multiply-adds for the new centroid's distances. The subsample is read
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
      var ownSum = 0.0;
      for (var i = lid; i < n; i += NT) { let d = distance[rows + i]; ownSum += d * d; }
      let total = sumAll(ownSum, lid);
      if (total > 0.0) {
        let goal = drawValue[draws + c] * total;
        chosen = n - 1u;
        var running = 0.0;
        for (var start = 0u; start < n; start += NT) {
          let i = start + lid;
          var v = 0.0;
          if (i < n) { let d = distance[rows + i]; v = d * d; }
          // Inclusive scan of the tile.
          partial[lid] = v;
          workgroupBarrier();
          for (var offset = 1u; offset < NT; offset = offset * 2u) {
            var add = 0.0;
            if (lid >= offset) { add = partial[lid - offset]; }
            workgroupBarrier();
            partial[lid] += add;
            workgroupBarrier();
          }
          let inclusive = partial[lid];
          let tile = partial[NT - 1u];
          workgroupBarrier();
          let found = minAll(select(NONE, i, i < n && running + inclusive > goal), lid);
          if (found != NONE) { chosen = found; break; }
          running += tile;
        }
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
