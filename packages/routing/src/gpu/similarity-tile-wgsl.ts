/**
 * `routing`'s membership similarities in WGSL, on the backend's register-tiled micro-tile
 * (`scoreTileWgsl`, the dot-product tile of its flash-attention kernel):
 *
 *   sim[(slot·C + c)·count + i] = μ_c · x̂_i        (cluster-major columns for the balanced top-w)
 *
 * with x̂_i = (x_i − shift_i)·scale_i (l2: x_i·scale_i) applied to the raw row as the tile loads it,
 * from the row's (shift, scale) (`rowAffineWgsl(dim)`): the normalised row's floats,
 * never written out.
 *
 * A workgroup takes 64 rows and walks the centroids in 64-centroid tiles (4 × 4 per thread in
 * registers, operands staged through workgroup memory), so each normalised row is read once per
 * 64 centroids and each centroid once per 64 rows; thread (ty, tx) writes centroids 4ty..4ty+3 at
 * rows i0 + tx + 16j, so a column's writes are coalesced. Every row's top-r centroids
 * (`balanced+nearest`) are kept by the tile itself for r ≤ {@link SIMILARITY_FUSED_TOP_R}
 * (`nearestBitsWgsl` sets their bits), else read off the columns by `simTopWgsl`. The dot products are summed in ascending
 * channel order per lane of the tile, the CPU in f64: a near-tie between two centroids, or at a
 * cluster's w-th similarity, may be ordered differently (see the README). The tile also writes,
 * per centroid, the largest `orderKey` of its 64 rows (`blockKeys[(slot·C + c)·rowTiles + tile]`),
 * which lets the balanced top-w skip the blocks that cannot hold a selected row.
 */
import { forRows, linearWorkgroup, operandScratchVec4, scoreTileWgsl, TILE_COLUMNS, tileConstants, type TileShape, zeroScores } from '@sparse-attn/backend-gpu';
import { insertTopR, orderKeyWgsl } from './wgsl-snippets.js';

/**
 * Uniform parameter block of {@link similarityTileWgsl} and {@link simTopWgsl}. `rowStride`: rows
 * between consecutive slots of the raw rows (a chunk's `keyStride` for keys, `count` for queries).
 */
export const SIMILARITY_PARAMS = ['slots', 'count', 'clusters', 'slotBase', 'groupSize', 'rowTiles', 'clusterTiles', 'tilesX', 'rowBase', 'mode', 'rowStride', 'pad1'] as const;

/** The tile: 64 centroids (256 threads) × 64 rows, operands in chunks of 16 channels. */
export const SIMILARITY_TILE: TileShape = { rows: 64, chunk: 16 };

/** Threads per workgroup of {@link simTopWgsl}. */
export const SIM_TOP_THREADS = 256;

const params = 'struct Params { slots: u32, count: u32, clusters: u32, slotBase: u32, groupSize: u32, rowTiles: u32, clusterTiles: u32, tilesX: u32, rowBase: u32, mode: u32, rowStride: u32, pad1: u32 }';

/** Rows per similarity tile: the block of positions whose largest key the tile writes. */
export const SIMILARITY_BLOCK = TILE_COLUMNS;

/** The largest r whose top-r centroids {@link similarityTileWgsl} keeps itself (larger r: {@link simTopWgsl} reads them off the columns). */
export const SIMILARITY_FUSED_TOP_R = 2;

/** The "no centroid" index in {@link similarityTileWgsl}'s `nearest` output (fewer centroids than r). */
const NONE = '0xffffffffu';

/**
 * Per-row top-r bookkeeping of the fused kernel (r ≤ {@link SIMILARITY_FUSED_TOP_R}): thread
 * (ty, tx) keeps, for each of its rows j (i0 + tx + 16j), the best r of the centroids it computed
 * as scalars `v{j}_{t}` / `k{j}_{t}` (value, centroid), best first.
 */
function fusedTopR(r: number) {
  const rows = [0, 1, 2, 3];
  const slots = Array.from({ length: r }, (_, t) => t);
  // Inserting (s, c) with c ascending and a strict comparison keeps the lower c first on ties.
  const insert = (j: number, value: string, c: string) => {
    const lines = [`if (${value} > v${j}_0) {`];
    for (let t = r - 1; t > 0; t--) lines.push(`  v${j}_${t} = v${j}_${t - 1}; k${j}_${t} = k${j}_${t - 1};`);
    lines.push(`  v${j}_0 = ${value}; k${j}_0 = ${c};`);
    if (r === 2) lines.push(`} else if (${value} > v${j}_1) {`, `  v${j}_1 = ${value}; k${j}_1 = ${c};`);
    lines.push('}');
    return lines.join(' ');
  };
  return {
    declare: rows.map((j) => slots.map((t) => `  var v${j}_${t} = -3.4e38;\n  var k${j}_${t} = ${NONE};`).join('\n')).join('\n'),
    // After a tile: centroid c0 + 4ty + q, q ascending (the thread's centroids in ascending order).
    visit: (q: number) => rows.map((j) => `      ${insert(j, `s${q}[${j}]`, 'c')}`).join('\n'),
    // The tree merge over ty: the upper half's lists go through workgroup memory (one vec4 per
    // (thread, row): value, centroid as a float (exact below 2^24, −1 for none), the same for the
    // second or (0, −1) at r = 1) to the lower half, which merges them.
    merge: `  for (var half = TR / 2u; half > 0u; half = half / 2u) {
    if (ty >= half && ty < 2u * half) {
${rows.map((j) => `      scratch[((ty - half) * TC + tx) * 4u + ${j}u] = vec4<f32>(v${j}_0, toFloat(k${j}_0), ${r === 2 ? `v${j}_1, toFloat(k${j}_1)` : '0.0, -1.0'});`).join('\n')}
    }
    workgroupBarrier();
    if (ty < half) {
${rows.map((j) => `      {
        let o = scratch[(ty * TC + tx) * 4u + ${j}u];
        ${mergeLists(j, r)}
      }`).join('\n')}
    }
    workgroupBarrier();
  }`,
    write: rows
      .map((j) => `  if (ty == 0u && i0 + tx + ${16 * j}u < P.count) {\n${slots.map((t) => `    nearest[(slot * P.count + i0 + tx + ${16 * j}u) * ${r}u + ${t}u] = k${j}_${t};`).join('\n')}\n  }`)
      .join('\n'),
  };
}

/** Merges the partner's list `o` (value, centroid pairs in o.xy, o.zw) into row j's list: the best r of both, by value then lower centroid. */
function mergeLists(j: number, r: number): string {
  const better = (va: string, ka: string, vb: string, kb: string) => `(${va} > ${vb} || (${va} == ${vb} && ${ka} < ${kb}))`;
  const ok0 = 'fromFloat(o.y)';
  const ok1 = 'fromFloat(o.w)';
  if (r === 1) return `if (${better('o.x', ok0, `v${j}_0`, `k${j}_0`)}) { v${j}_0 = o.x; k${j}_0 = ${ok0}; }`;
  // r = 2: the first is the better head; the second, the better of the loser head and the winner's second.
  return `if (${better('o.x', ok0, `v${j}_0`, `k${j}_0`)}) {
          if (${better(`v${j}_0`, `k${j}_0`, 'o.z', ok1)}) { v${j}_1 = v${j}_0; k${j}_1 = k${j}_0; } else { v${j}_1 = o.z; k${j}_1 = ${ok1}; }
          v${j}_0 = o.x; k${j}_0 = ${ok0};
        } else if (${better('o.x', ok0, `v${j}_1`, `k${j}_1`)}) { v${j}_1 = o.x; k${j}_1 = ${ok0}; }`;
}

/**
 * One workgroup per (slot, 64-row tile), walking the centroid tiles in order. Bindings: 1 raw rows
 * (row-major, row i of slot s at row `P.rowBase + s · P.rowStride + i`), 2 centroids (call-wide `[P.slotBase +
 * slot / P.groupSize][C][dim]`), 3 `sim` (`[slot][C][count]`), 4 block keys (`[slot][C][rowTiles]`),
 * 5 each row's (shift, scale) (`[slot][count]`; `P.mode` 0 = l2, 1 = layernorm).
 * With `topR` = r in 1 … {@link SIMILARITY_FUSED_TOP_R}, also 6 `nearest` (`[slot][count][r]`):
 * each row's r most similar centroids, most similar first, ties → lower c ({@link simTopWgsl}'s
 * order and floats, without re-reading the columns; `0xffffffff` past C): each thread keeps its
 * rows' best r of the centroids it computes in registers, and the 16 threads sharing a row merge
 * them in workgroup memory after the last centroid tile.
 */
export function similarityTileWgsl(dim: number, topR = 0): string {
  if (!(Number.isInteger(topR) && topR >= 0 && topR <= SIMILARITY_FUSED_TOP_R)) throw new RangeError(`similarityTileWgsl: topR must be 0 … ${SIMILARITY_FUSED_TOP_R}, got ${topR}`);
  const vectorized = dim % 4 === 0;
  const element = vectorized ? 'vec4<f32>' : 'f32';
  const zero = vectorized ? 'vec4<f32>(0.0)' : '0.0';
  const index = (base: string) => (vectorized ? `(${base}) / 4u` : base);
  const top = topR > 0 ? fusedTopR(topR) : undefined;
  return /* wgsl */ `
${tileConstants(SIMILARITY_TILE)}
const D: u32 = ${dim}u;
${params}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> x: array<${element}>;
@group(0) @binding(2) var<storage, read> centroids: array<${element}>;
@group(0) @binding(3) var<storage, read_write> sim: array<f32>;
@group(0) @binding(4) var<storage, read_write> blockKeys: array<u32>;
@group(0) @binding(5) var<storage, read> affine: array<vec2<f32>>;
${top ? '@group(0) @binding(6) var<storage, read_write> nearest: array<u32>;' : ''}

var<workgroup> scratch: array<vec4<f32>, ${operandScratchVec4(SIMILARITY_TILE)}>;
// Per centroid of the tile: the largest order key of its rows (cleared before each tile's maxima).
var<workgroup> tileKeys: array<atomic<u32>, BR>;
${orderKeyWgsl}
${top ? `fn toFloat(k: u32) -> f32 { return select(f32(k), -1.0, k == ${NONE}); }
fn fromFloat(x: f32) -> u32 { return select(u32(x), ${NONE}, x < 0.0); }` : ''}

// Channel(s) e of centroid c / row i (0 outside the operand).
fn centroidAt(cslot: u32, c: u32, e: u32) -> ${element} {
  if (c >= P.clusters || e >= D) { return ${zero}; }
  return centroids[${index('(cslot * P.clusters + c) * D + e')}];
}

fn rowAt(slot: u32, i: u32, e: u32) -> ${element} {
  if (i >= P.count || e >= D) { return ${zero}; }
  let a = affine[slot * P.count + i];
  let v = x[${index('(P.rowBase + slot * P.rowStride + i) * D + e')}];
  return select((v - a.x) * a.y, v * a.y, P.mode == 0u);
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${linearWorkgroup}
  if (linear >= P.slots * P.rowTiles) { return; }
  let slot = linear / P.rowTiles;
  let i0 = (linear % P.rowTiles) * BC;
  let cslot = P.slotBase + slot / P.groupSize;
  let tx = lid % TC;
  let ty = lid / TC;
${top ? top.declare : ''}
  if (lid < BR) { atomicStore(&tileKeys[lid], 0u); }
  for (var tile = 0u; tile < P.clusterTiles; tile++) {
    let c0 = tile * BR;
${zeroScores('    ')}
${scoreTileWgsl(SIMILARITY_TILE, 'D', (r, e) => `centroidAt(cslot, c0 + ${r}, ${e})`, (c, e) => `rowAt(slot, i0 + ${c}, ${e})`, vectorized)}
${forRows((r) => `    {
      let c = c0 + 4u * ty + ${r}u;
      var best = 0u;
      if (c < P.clusters) {
        for (var j = 0u; j < 4u; j++) {
          let i = i0 + tx + 16u * j;
          if (i < P.count) {
            sim[(slot * P.clusters + c) * P.count + i] = s${r}[j];
            best = max(best, orderKey(s${r}[j]));
          }
        }
${top ? top.visit(r) : ''}
      }
      atomicMax(&tileKeys[4u * ty + ${r}u], best);
    }`)}
    workgroupBarrier();
    // Each centroid's largest key over the tile's rows (0 below every key: no row); the same
    // thread clears it for the next tile, whose operand barriers order that before its maxima.
    if (lid < BR) {
      if (c0 + lid < P.clusters) { blockKeys[(slot * P.clusters + c0 + lid) * P.rowTiles + i0 / BC] = atomicLoad(&tileKeys[lid]); }
      atomicStore(&tileKeys[lid], 0u);
    }
  }
${top ? top.merge : ''}
${top ? top.write : ''}
}
`;
}

/**
 * A kernel of one thread per (slot, row) that sets bits of the cluster columns
 * (`[slot][C][⌈count / 32⌉]`, binding 2, after the balanced top-w, which zeroes them): binding 1 is
 * `source`; `body(setBit)` sees `slot`, row `i` and `id`, and `setBit(c)` gives the statement that
 * sets row i's bit in cluster c's column.
 */
function rowBitsKernel(source: string, body: (setBit: (c: string) => string) => string): string {
  const setBit = (c: string) => `atomicOr(&bits[(slot * P.clusters + ${c}) * words + i / 32u], 1u << (i % 32u));`;
  return /* wgsl */ `
${params}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) ${source}
@group(0) @binding(2) var<storage, read_write> bits: array<atomic<u32>>;

@compute @workgroup_size(${SIM_TOP_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * P.tilesX) * ${SIM_TOP_THREADS}u + lid;
  if (id >= P.slots * P.count) { return; }
  let slot = id / P.count;
  let i = id % P.count;
  let words = (P.count + 31u) / 32u;
${body(setBit)}
}
`;
}

/**
 * One thread per (slot, row): sets the bits of the row's top-r centroids that
 * {@link similarityTileWgsl} wrote to `nearest` (`[slot][count][r]`). Bindings: 1 `nearest`, 2 bits.
 */
export function nearestBitsWgsl(r: number): string {
  return rowBitsKernel(
    'var<storage, read> nearest: array<u32>;',
    (setBit) => `  for (var t = 0u; t < ${r}u; t++) {
    let c = nearest[id * ${r}u + t];
    if (c != ${NONE}) { ${setBit('c')} }
  }`,
  );
}

/**
 * One thread per (slot, row): the row's `r` most similar centroids from the similarity columns
 * (ties → lower c) join the row's clusters (`balanced+nearest`; for r above
 * {@link SIMILARITY_FUSED_TOP_R}, which the similarity tile keeps itself). Bindings: 1 `sim`, 2 bits.
 */
export function simTopWgsl(r: number): string {
  return rowBitsKernel(
    'var<storage, read> sim: array<f32>;',
    (setBit) => `  const R: u32 = ${r}u;
  var best: array<u32, ${r}>;
  var bestValue: array<f32, ${r}>;
  var filled = 0u;
  for (var k = 0u; k < P.clusters; k++) {
    let s = sim[(slot * P.clusters + k) * P.count + i];
${insertTopR('    ')}
  }
  for (var t = 0u; t < filled; t++) { ${setBit('best[t]')} }`,
  );
}
