/**
 * Spherical k-means for routing in WGSL (spec routing.md §3–4; CPU: `spherical-kmeans.ts`,
 * `normalize-rows.ts`). Kernels one thread per output element:
 *
 *   normalise:  x̂ = x / max(‖x‖₂, ε)   or   (x − mean) / sqrt(var + ε)      (`normalizeRowsWgsl`,
 *               channel-major output; `rowAffineWgsl`: only each row's (shift, scale))
 *   sample:     s_i = x̂_{idx_i} / ‖x̂_{idx_i}‖ (the seeded subsample the CPU fits on), gathered
 *               from the raw keys, row- and channel-major                     (`kmeansGatherWgsl`)
 *   update:     Σ_c = Σ_{a(i)=c} s_i,  n_c = |{i : a(i) = c}|  (`kmeansSumWgsl`)
 *               μ_c = Σ_c / ‖Σ_c‖ when n_c > 0 (empty clusters keep μ_c)     (`kmeansNormalizeWgsl`)
 *               both skipped for a slot whose assignment moved no row this iteration (the
 *               per-slot `changed` flags the assignment sets: Lloyd's fixed point, where the CPU stops)
 *
 * The assignment a(i) = argmax_c s_i · μ_c and the top-r centroids of each routing vector are
 * tiled rows × centroids products (`centroid-tile-wgsl.ts`); the seeding is `kmeans-seed-wgsl.ts`.
 * Centroids and subsample indices live in call-wide buffers (`slotBase` = the chunk's first slot).
 * The GPU accumulates in f32 where the CPU sums centroid updates in f64; see the README.
 */
import { inclusiveScanU32 } from './wgsl-snippets.js';

/**
 * Uniform parameter block shared by the k-means kernels (unused fields are 0). `rowStride`: rows
 * between consecutive slots of the raw rows the normalisation and the gather read (a chunk's
 * `keyStride` for keys, whose slots may lie a KV cache's capacity apart; `count` for queries):
 * row i of slot s is row `rowBase + s · rowStride + i`.
 */
export const KMEANS_PARAMS = ['rows', 'dim', 'mode', 'tilesX', 'slots', 'count', 'sample', 'clusters', 'groupSize', 'slotBase', 'rowBase', 'iteration', 'flagStride', 'rowStride', 'pad1', 'pad2'] as const;

/** Threads per workgroup of every k-means kernel. */
export const KMEANS_THREADS = 64;

const header = /* wgsl */ `
struct Params { rows: u32, dim: u32, mode: u32, tilesX: u32, slots: u32, count: u32, sample: u32, clusters: u32, groupSize: u32, slotBase: u32, rowBase: u32, iteration: u32, flagStride: u32, rowStride: u32, pad1: u32, pad2: u32 }
@group(0) @binding(0) var<uniform> P: Params;
`;

const threadId = `let id = (wid.x + wid.y * P.tilesX) * ${KMEANS_THREADS}u + lid;`;
const entry = `@compute @workgroup_size(${KMEANS_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32)`;

/** Threads per workgroup of {@link normalizeRowsWgsl}. */
export const NORMALIZE_THREADS = 128;

/** Rows one workgroup of {@link normalizeRowsWgsl} normalises: 16, fewer when 16 rows of `dim` floats exceed 16 KiB. */
export function normalizeRowsPerWorkgroup(dim: number): number {
  return Math.max(1, Math.min(16, Math.floor(4096 / (dim + 1))));
}

/** Workgroup memory of {@link normalizeRowsWgsl}: its staged rows (padded by one float) and their (shift, scale) pairs. */
export function normalizeRowsWorkgroupBytes(dim: number): number {
  const rows = normalizeRowsPerWorkgroup(dim);
  return 4 * rows * (dim + 1) + 8 * rows;
}

/** WebGPU's guaranteed workgroup memory, which the normalisation stays within on every device. */
export const NORMALIZE_MAX_WORKGROUP_BYTES = 16384;

/** The largest head dim the normalisation stages (one padded row and its pair in 16 KiB). */
export const NORMALIZE_MAX_DIM = NORMALIZE_MAX_WORKGROUP_BYTES / 4 - 3;

/**
 * The staging both row kernels share: constants, {@link normalizeRowsPerWorkgroup} rows of `dim`
 * floats (each padded by one) in workgroup memory, their (shift, scale) pairs, and
 * `rowAffine(o)`: the pair of the staged row at offset o (`P.mode` 0 = l2 with ε = 1e-12,
 * 1 = layernorm without scale, ε = 1e-6), its sums taken by one thread over channels 0 … D − 1 in
 * order.
 */
function stagedRowsWgsl(dim: number): string {
  const rows = normalizeRowsPerWorkgroup(dim);
  return /* wgsl */ `const D: u32 = ${dim}u;
const ROWS: u32 = ${rows}u;
const PAD: u32 = ${dim + 1}u;
const NT: u32 = ${NORMALIZE_THREADS}u;

var<workgroup> tile: array<f32, ${rows * (dim + 1)}>;
// Per staged row: the value subtracted (layernorm's mean, 0 for l2) and the scale.
var<workgroup> affine: array<vec2<f32>, ${rows}>;

fn rowAffine(o: u32) -> vec2<f32> {
  if (P.mode == 0u) {
    var sum = 0.0;
    for (var c = 0u; c < D; c++) { sum += tile[o + c] * tile[o + c]; }
    return vec2<f32>(0.0, 1.0 / max(sqrt(sum), 1e-12));
  }
  var mean = 0.0;
  for (var c = 0u; c < D; c++) { mean += tile[o + c]; }
  mean = mean / f32(D);
  var variance = 0.0;
  for (var c = 0u; c < D; c++) { let t = tile[o + c] - mean; variance += t * t; }
  return vec2<f32>(mean, 1.0 / sqrt(variance / f32(D) + 1e-6));
}`;
}

/**
 * Row normalisation (`mode` 0 = l2 with ε = 1e-12, 1 = layernorm without scale, ε = 1e-6) of
 * `P.rows` rows of `dim` floats, {@link normalizeRowsPerWorkgroup} rows per workgroup (row
 * i of slot s read at row `P.rowBase + s · P.rowStride + i` of x), written channel-major per slot
 * of `P.count` rows (`y[(slot·dim + c)·count + i]`, for the tiled centroid kernels' coalesced reads).
 *
 * The workgroup stages its rows through workgroup memory with coalesced loads and stores (one
 * thread per row reading its own row strided the warp's loads 512 B apart at D = 128: 18 ms for
 * 64k keys and queries of 32 heads on the H100); each row's sums are still taken by one thread
 * over channels 0 … D − 1 in order, so the floats written are the one-thread-per-row kernel's
 * (and the subsample gather's, `kmeansGatherWgsl`).
 */
export function normalizeRowsWgsl(dim: number): string {
  return /* wgsl */ `${header}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

${stagedRowsWgsl(dim)}

@compute @workgroup_size(${NORMALIZE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row0 = (wid.x + wid.y * P.tilesX) * ROWS;
  if (row0 >= P.rows) { return; }
  let count = min(ROWS, P.rows - row0);
  // Row id = slot · count + i is row P.rowBase + slot · P.rowStride + i of x (a KV-slot group
  // inside a larger chunk, slots a KV cache's capacity apart).
  for (var e = lid; e < count * D; e += NT) {
    let id = row0 + e / D;
    tile[(e / D) * PAD + e % D] = x[(P.rowBase + (id / P.count) * P.rowStride + id % P.count) * D + e % D];
  }
  workgroupBarrier();
  if (lid < count) { affine[lid] = rowAffine(lid * PAD); }
  workgroupBarrier();
  for (var e = lid; e < count * D; e += NT) {
    // Consecutive threads take consecutive rows of one channel.
    let r = e % count;
    let c = e / count;
    let id = row0 + r;
    let a = affine[r];
    let value = select((tile[r * PAD + c] - a.x) * a.y, tile[r * PAD + c] * a.y, P.mode == 0u);
    y[((id / P.count) * D + c) * P.count + id % P.count] = value;
  }
}
`;
}

/** Threads per row of {@link rowAffineWgsl}. */
const AFFINE_LANES = 8;

/** Rows one workgroup of {@link rowAffineWgsl} takes (256 threads, {@link AFFINE_LANES} per row). */
export const ROW_AFFINE_ROWS = 32;

/**
 * Each row's (shift, scale) of the normalisation (`P.mode` as in {@link normalizeRowsWgsl}):
 * `y[row] = (0, 1 / max(‖x‖, 1e-12))` for l2, `(mean, 1 / sqrt(var + 1e-6))` for layernorm, for
 * `P.rows` rows of `dim` floats (row i of slot s at row `P.rowBase + s · P.rowStride + i` of `x`,
 * slots of `P.count` rows). The similarity tile applies
 * the pair as it loads the raw rows (`(x − shift)·scale`, or `x·scale` for l2), so the S × D
 * normalised rows are never written or re-read.
 *
 * Eight threads share a row: thread p sums the squares (or values) of the row's vec4s p, p + 8,
 * … (channels p, p + 8, … when D is not a multiple of 4; a loop of constant trip count, so its
 * loads are issued together), so a warp reads four whole rows, coalesced; thread 0 of the row adds the eight partial sums in
 * order. (The staged kernel it replaced, `normalizeRowsWgsl`'s layout with one thread per row
 * summing from workgroup memory, took 3.9 ms for the 4 Mi keys and queries of 64k MHA on the
 * H100, waiting on its loads then on its sixteen summing threads; this one reads them at the
 * bandwidth.) The sums split eight ways round differently from the CPU's (which sums in f64, in
 * order); similarities move by rounding only.
 */
export function rowAffineWgsl(dim: number): string {
  const lanes = dim % 4 === 0;
  const width = lanes ? dim / 4 : dim;
  const type = lanes ? 'vec4<f32>' : 'f32';
  const square = lanes ? 'dot(v, v)' : 'v * v';
  const total = lanes ? 'dot(v, vec4<f32>(1.0))' : 'v';
  const centred = lanes ? 'let t = v - vec4<f32>(mean); centred += dot(t, t);' : 'let t = v - mean; centred += t * t;';
  return /* wgsl */ `${header}
@group(0) @binding(1) var<storage, read> x: array<${type}>;
@group(0) @binding(2) var<storage, read_write> y: array<vec2<f32>>;

const L: u32 = ${AFFINE_LANES}u;
const W: u32 = ${width}u;
const PER: u32 = ${Math.ceil(width / AFFINE_LANES)}u;
const ROWS: u32 = ${ROW_AFFINE_ROWS}u;

var<workgroup> partial: array<f32, ${ROW_AFFINE_ROWS * AFFINE_LANES}>;
var<workgroup> sums: array<f32, ${ROW_AFFINE_ROWS}>;

// The sum over lanes of the row's partial sums (lane 0 adds them in order), seen by every lane.
fn rowSum(own: f32, lid: u32) -> f32 {
  partial[lid] = own;
  workgroupBarrier();
  if (lid % L == 0u) {
    var sum = 0.0;
    for (var p = 0u; p < L; p++) { sum += partial[lid + p]; }
    sums[lid / L] = sum;
  }
  workgroupBarrier();
  return sums[lid / L];
}

@compute @workgroup_size(${ROW_AFFINE_ROWS * AFFINE_LANES})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row0 = (wid.x + wid.y * P.tilesX) * ROWS;
  if (row0 >= P.rows) { return; }
  let row = row0 + lid / L;
  let lane = lid % L;
  let valid = row < P.rows;
  // Rows past the end read row 0 and write nothing (every thread reaches the barriers). Row id =
  // slot · count + i is row P.rowBase + slot · P.rowStride + i of x.
  let id = select(0u, row, valid);
  let src = (P.rowBase + (id / P.count) * P.rowStride + id % P.count) * W;
  var own = 0.0;
  for (var j = 0u; j < PER; j++) {
    let e = lane + j * L;
    if (e < W) { let v = x[src + e]; own += select(${total}, ${square}, P.mode == 0u); }
  }
  let sum = rowSum(own, lid);
  var pair = vec2<f32>(0.0, 1.0 / max(sqrt(sum), 1e-12));
  if (P.mode != 0u) {
    // Layernorm: the centred squares, from a second read of the row (cached).
    let mean = sum / f32(${dim}u);
    var centred = 0.0;
    for (var j = 0u; j < PER; j++) {
      let e = lane + j * L;
      if (e < W) { let v = x[src + e]; ${centred} }
    }
    pair = vec2<f32>(mean, 1.0 / sqrt(rowSum(centred, lid) / f32(${dim}u) + 1e-6));
  }
  if (valid && lane == 0u) { y[row] = pair; }
}
`;
}

/**
 * The normalisation and the subsample gather in one pass over the raw keys (`[slot][P.count][dim]`,
 * slots `P.rowStride` rows apart: a chunk's `keyStride`):
 * each picked row is normalised (`P.mode` as in {@link normalizeRowsWgsl}) and renormalised (as the
 * CPU does to its subsample) with the same operations in the same order as normalising every key
 * and then gathering (the two kernels this replaced), so it writes the same floats without the
 * S × D normalised-keys buffer. Writes the subsample row-major (`sample`,
 * `[slot][sample][dim]`) and channel-major (`sampleT`, `[slot][dim][sample]`, for the seeding).
 * Rows (`P.rows` = slots · sample) are staged {@link normalizeRowsPerWorkgroup} at a time through
 * workgroup memory, as in {@link normalizeRowsWgsl}, so loads and stores are coalesced (one thread
 * per row reading and writing its own 512-B row took ~3 ms for 32 slots of 4096 rows on the H100).
 */
export function kmeansGatherWgsl(dim: number): string {
  return /* wgsl */ `${header}
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> picked: array<u32>;
@group(0) @binding(3) var<storage, read_write> sample: array<f32>;
@group(0) @binding(4) var<storage, read_write> sampleT: array<f32>;

${stagedRowsWgsl(dim)}
// (Each staged row's padding float holds its renormalisation 1 / ‖x̂‖.)

fn normalized(t: f32, a: vec2<f32>) -> f32 {
  if (P.mode == 0u) { return t * a.y; }
  return (t - a.x) * a.y;
}

@compute @workgroup_size(${NORMALIZE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row0 = (wid.x + wid.y * P.tilesX) * ROWS;
  if (row0 >= P.rows) { return; }
  let count = min(ROWS, P.rows - row0);
  for (var e = lid; e < count * D; e += NT) {
    let id = row0 + e / D;
    let src = ((id / P.sample) * P.rowStride + picked[P.slotBase * P.sample + id]) * D;
    tile[(e / D) * PAD + e % D] = x[src + e % D];
  }
  workgroupBarrier();
  if (lid < count) {
    let o = lid * PAD;
    let a = rowAffine(o);
    var sum = 0.0;
    for (var c = 0u; c < D; c++) { let y = normalized(tile[o + c], a); sum += y * y; }
    let norm = sqrt(sum);
    affine[lid] = a;
    tile[o + D] = select(1.0, 1.0 / norm, norm > 1e-12);
  }
  workgroupBarrier();
  for (var e = lid; e < count * D; e += NT) {
    let r = e / D;
    sample[row0 * D + e] = normalized(tile[r * PAD + e % D], affine[r]) * tile[r * PAD + D];
  }
  for (var e = lid; e < count * D; e += NT) {
    // Consecutive threads take consecutive rows of one channel.
    let r = e % count;
    let c = e / count;
    let id = row0 + r;
    sampleT[((id / P.sample) * D + c) * P.sample + id % P.sample] = normalized(tile[r * PAD + c], affine[r]) * tile[r * PAD + D];
  }
}
`;
}

/** Rows a workgroup of {@link kmeansSumWgsl} lists per round (16 per thread). */
const SUM_ROUND = KMEANS_THREADS * 16;

/**
 * Σ_c and n_c, one workgroup per (slot, cluster). The slot's assignments are read in rounds of
 * {@link SUM_ROUND} rows: each thread tests its contiguous 16 rows, a workgroup scan of the
 * threads' match counts places the matches in an ascending list in workgroup memory, and each
 * thread adds the listed rows to its own channels (`vec4`: channel quads, `dim` a multiple of 4),
 * carrying the running sum in `sums` from round to round. Every channel is summed from 0 over the
 * cluster's rows in ascending order: the floats of one thread per (cluster, channel) scanning all
 * n assignments, which read the assignment column C · D times per slot (0.68 ms per Lloyd
 * iteration at 64k, n = 4096, C = 256, 32 slots on the H100) where this reads it C times.
 */
export function kmeansSumWgsl(vec4 = false): string {
  const element = vec4 ? 'vec4<f32>' : 'f32';
  return /* wgsl */ `${header}
@group(0) @binding(1) var<storage, read> sample: array<${element}>;
@group(0) @binding(2) var<storage, read> assignment: array<u32>;
@group(0) @binding(3) var<storage, read_write> sums: array<${element}>;
@group(0) @binding(4) var<storage, read_write> counts: array<u32>;
@group(0) @binding(5) var<storage, read> changed: array<u32>;

const NT: u32 = ${KMEANS_THREADS}u;
const ROUND: u32 = ${SUM_ROUND}u;
var<workgroup> list: array<u32, ${SUM_ROUND}>;
var<workgroup> partial: array<u32, ${KMEANS_THREADS}>;
var<workgroup> moved: u32;

${entry} {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.clusters) { return; }
  let slot = linear / P.clusters;
  // At a fixed point (no row moved this iteration) the centroids stay: the CPU stops there.
  if (lid == 0u) { moved = changed[slot * P.flagStride + P.iteration]; }
  if (workgroupUniformLoad(&moved) == 0u) { return; }
  let k = linear % P.clusters;
  let width = ${vec4 ? 'P.dim / 4u' : 'P.dim'};
  let rows = slot * P.sample;
  let out = linear * width;
  let per = ROUND / NT;
  var total = 0u;
  for (var start = 0u; start < P.sample; start += ROUND) {
    let first = start + lid * per;
    let last = min(first + per, P.sample);
    var mine = 0u;
    for (var i = first; i < last; i++) { if (assignment[rows + i] == k) { mine++; } }
    partial[lid] = mine;
    workgroupBarrier();
${inclusiveScanU32('    ')}
    var at = partial[lid] - mine;
    let found = partial[NT - 1u];
    for (var i = first; i < last; i++) { if (assignment[rows + i] == k) { list[at] = i; at++; } }
    workgroupBarrier();
    for (var e = lid; e < width; e += NT) {
      var sum = ${element}(0.0);
      if (start > 0u) { sum = sums[out + e]; }
      for (var m = 0u; m < found; m++) { sum += sample[(rows + list[m]) * width + e]; }
      sums[out + e] = sum;
    }
    total += found;
    workgroupBarrier();
  }
  if (lid == 0u) { counts[linear] = total; }
}
`;
}

/** Moves every non-empty centroid to its normalised sum (a sum of norm ≤ 1e-12 is copied as is, like the CPU). */
export function kmeansNormalizeWgsl(): string {
  return /* wgsl */ `${header}
@group(0) @binding(1) var<storage, read> sums: array<f32>;
@group(0) @binding(2) var<storage, read> counts: array<u32>;
@group(0) @binding(3) var<storage, read_write> centroids: array<f32>;
@group(0) @binding(4) var<storage, read> changed: array<u32>;

${entry} {
  ${threadId}
  if (id >= P.slots * P.clusters) { return; }
  if (changed[(id / P.clusters) * P.flagStride + P.iteration] == 0u || counts[id] == 0u) { return; }
  let o = id * P.dim;
  let m = (P.slotBase * P.clusters + id) * P.dim;
  var total = 0.0;
  for (var c = 0u; c < P.dim; c++) { total += sums[o + c] * sums[o + c]; }
  let norm = sqrt(total);
  let inv = select(1.0, 1.0 / norm, norm > 1e-12);
  for (var c = 0u; c < P.dim; c++) { centroids[m + c] = sums[o + c] * inv; }
}
`;
}

