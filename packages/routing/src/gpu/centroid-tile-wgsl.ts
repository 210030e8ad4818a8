/**
 * Rows × centroids dot products in WGSL, tiled through workgroup memory (spec routing.md §3–4):
 *
 *   s(i, c) = x_i · μ_c        for the rows i of one slot and every centroid c of its routing head
 *
 * One workgroup takes `CENTROID_TILE_THREADS` rows of one slot (one thread per row) and walks the
 * C centroids in tiles of `CENTROID_TILE` vectors, staged cooperatively in workgroup memory; each
 * thread streams its own row once per tile and updates `CENTROID_TILE` accumulators, so a centroid
 * is read from global memory once per workgroup instead of once per row, and a row element feeds
 * `CENTROID_TILE` multiply-adds. What a thread does with s(i, c), visiting c in ascending order:
 *
 *   'assign'   a(i) = argmax_c s(i, c), ties → lower c (Lloyd's assignment); a slot whose previous
 *              iteration moved no row (its `changed` flag 0) is at its fixed point and returns at once
 *   'top'      the `r` largest, most similar first, ties → lower c (nearest-centroid membership)
 *
 * Each dot product is accumulated in the order of the one-thread-per-output kernel it replaced
 * (`kmeansAssignWgsl`, `topCentroidsWgsl`, since removed): scalar in ascending channel order
 * (from vec4 loads when the dimension allows), so it yields the same floats, and the same picks.
 * (The membership's similarity columns over all S rows take the register-tiled kernel of
 * `similarity-tile-wgsl.ts`: this one re-reads each row once per 16 centroids.)
 */
import { insertTopR } from './wgsl-snippets.js';

/** Uniform parameter block of the tiled kernel. */
export const CENTROID_TILE_PARAMS = ['slots', 'count', 'clusters', 'slotBase', 'groupSize', 'rowBase', 'blocks', 'tilesX', 'iteration', 'flagStride', 'pad0', 'pad1'] as const;

/** Rows (threads) per workgroup. */
export const CENTROID_TILE_THREADS = 64;

/** Centroids staged per tile. */
export const CENTROID_TILE = 16;

/** What the tiled kernel does with each row's similarities (see the file comment). */
export type CentroidTileMode = 'assign' | 'top';

/**
 * Generates the tiled kernel for rows of `dim` floats. Bindings: 1 = rows, channel-major
 * (`[slot][dim][count]` floats: thread i's read of channel e is contiguous with its neighbours',
 * the layout `normalizeRowsWgsl(dim)` and the k-means gather write),
 * 2 = centroids (call-wide, `[P.slotBase + slot / P.groupSize][C][dim]`), then per mode:
 * 'assign' 3 = `assignment[slot·count + i]`, 4 = `changed[slot·P.flagStride + iteration]` (set when a
 * row moves, always at iteration 0; zero on entry); 'top' 3 = `top[(P.rowBase + row)·r + t]`. `P.blocks` =
 * ⌈count / threads⌉ workgroups per slot.
 */
export function centroidTileWgsl(dim: number, mode: CentroidTileMode, r = 0): string {
  // vec4 loads, added lane by lane in channel order (as the scalar kernels they replaced).
  const lanes = dim % 4 === 0;
  const type = lanes ? 'vec4<f32>' : 'f32';
  const width = lanes ? dim / 4 : dim;
  const top = mode === 'top';
  const bindings = ['@group(0) @binding(1) var<storage, read> x: array<f32>;', `@group(0) @binding(2) var<storage, read> centroids: array<${type}>;`];
  if (mode === 'assign') bindings.push('@group(0) @binding(3) var<storage, read_write> assignment: array<u32>;', '@group(0) @binding(4) var<storage, read_write> changed: array<atomic<u32>>;');
  if (mode === 'top') bindings.push('@group(0) @binding(3) var<storage, read_write> top: array<u32>;');
  const visit = mode === 'assign' ? '      if (k == 0u || s > bestValue) { best = k; bestValue = s; }' : insertTopR('      ');
  const finish =
    mode === 'assign'
      ? // Lloyd's fixed-point test: did any row of the slot move (every row moves at iteration 0)?
        'if (P.iteration == 0u || assignment[slot * P.count + i] != best) { atomicOr(&changed[slot * P.flagStride + P.iteration], 1u); }\n  assignment[slot * P.count + i] = best;'
      : 'for (var t = 0u; t < R; t++) { top[(P.rowBase + slot * P.count + i) * R + t] = select(0xffffffffu, best[t], t < filled); }';
  return /* wgsl */ `
struct Params { slots: u32, count: u32, clusters: u32, slotBase: u32, groupSize: u32, rowBase: u32, blocks: u32, tilesX: u32, iteration: u32, flagStride: u32, pad0: u32, pad1: u32 }
@group(0) @binding(0) var<uniform> P: Params;
${bindings.join('\n')}

const NT: u32 = ${CENTROID_TILE_THREADS}u;
const T: u32 = ${CENTROID_TILE}u;
const W: u32 = ${width}u;
${top ? `const R: u32 = ${Math.max(1, r)}u;` : ''}

var<workgroup> tile: array<${type}, ${CENTROID_TILE * width}>;
${mode === 'assign' ? 'var<workgroup> settled: u32;' : ''}

@compute @workgroup_size(${CENTROID_TILE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  let slot = linear / P.blocks;
  if (slot >= P.slots) { return; }
${mode === 'assign' ? `  // A slot whose previous iteration moved no row is at its fixed point: nothing changes any more.
  if (lid == 0u) { settled = select(0u, 1u, P.iteration > 0u && atomicLoad(&changed[slot * P.flagStride + P.iteration - 1u]) == 0u); }
  if (workgroupUniformLoad(&settled) == 1u) { return; }` : ''}
  let i = (linear % P.blocks) * NT + lid;
  let valid = i < P.count;
  // Rows past the slot's end read a valid row and write nothing (every thread must reach the barriers).
  // Channel e of the row sits at x[b + e·count]: a warp reads 32 consecutive floats per channel.
  let b = slot * P.count * ${dim}u + min(i, P.count - 1u);
  let m0 = (P.slotBase + slot / P.groupSize) * P.clusters * W;
${mode === 'assign' ? '  var best = 0u;\n  var bestValue = 0.0;' : ''}${top ? `  var best: array<u32, ${Math.max(1, r)}>;\n  var bestValue: array<f32, ${Math.max(1, r)}>;\n  var filled = 0u;` : ''}
  for (var c0 = 0u; c0 < P.clusters; c0 += T) {
    let n = min(T, P.clusters - c0);
    for (var e = lid; e < n * W; e += NT) { tile[e] = centroids[m0 + c0 * W + e]; }
    workgroupBarrier();
    var acc: array<f32, ${CENTROID_TILE}>;
    for (var t = 0u; t < T; t++) { acc[t] = 0.0; }
    for (var e = 0u; e < W; e++) {
      let xe = ${lanes ? 'vec4<f32>(x[b + 4u * e * P.count], x[b + (4u * e + 1u) * P.count], x[b + (4u * e + 2u) * P.count], x[b + (4u * e + 3u) * P.count])' : 'x[b + e * P.count]'};
      for (var t = 0u; t < T; t++) {
${lanes ? '        let ce = tile[t * W + e];\n        acc[t] += xe.x * ce.x;\n        acc[t] += xe.y * ce.y;\n        acc[t] += xe.z * ce.z;\n        acc[t] += xe.w * ce.w;' : '        acc[t] += xe * tile[t * W + e];'}
      }
    }
    for (var t = 0u; t < n; t++) {
      let k = c0 + t;
      let s = acc[t];
${visit}
    }
    workgroupBarrier();
  }
  if (!valid) { return; }
  ${finish}
}
`;
}
