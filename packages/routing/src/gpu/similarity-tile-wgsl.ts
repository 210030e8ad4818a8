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
 * A workgroup computes a 64-centroid × 64-row tile (4 × 4 per thread in registers, operands
 * staged through workgroup memory), so each normalised row is read once per 64 centroids and
 * each centroid once per 64 rows; thread (ty, tx) writes centroids 4ty..4ty+3 at rows
 * i0 + tx + 16j, so a column's writes are coalesced. `simTopWgsl` then takes every row's top-r
 * centroids from the columns (`balanced+nearest`). The dot products are summed in ascending
 * channel order per lane of the tile, the CPU in f64: a near-tie between two centroids, or at a
 * cluster's w-th similarity, may be ordered differently (see the README). The tile also writes,
 * per centroid, the largest `orderKey` of its 64 rows (`blockKeys[(slot·C + c)·rowTiles + tile]`),
 * which lets the balanced top-w skip the blocks that cannot hold a selected row.
 */
import { forRows, linearWorkgroup, operandScratchVec4, scoreTileWgsl, TILE_COLUMNS, tileConstants, type TileShape, zeroScores } from '@sparse-attn/backend-gpu';
import { insertTopR, orderKeyWgsl } from './wgsl-snippets.js';

/** Uniform parameter block of {@link similarityTileWgsl} and {@link simTopWgsl}. */
export const SIMILARITY_PARAMS = ['slots', 'count', 'clusters', 'slotBase', 'groupSize', 'rowTiles', 'clusterTiles', 'tilesX', 'rowBase', 'mode', 'pad0', 'pad1'] as const;

/** The tile: 64 centroids (256 threads) × 64 rows, operands in chunks of 16 channels. */
export const SIMILARITY_TILE: TileShape = { rows: 64, chunk: 16 };

/** Threads per workgroup of {@link simTopWgsl}. */
export const SIM_TOP_THREADS = 256;

const params = 'struct Params { slots: u32, count: u32, clusters: u32, slotBase: u32, groupSize: u32, rowTiles: u32, clusterTiles: u32, tilesX: u32, rowBase: u32, mode: u32, pad0: u32, pad1: u32 }';

/** Rows per similarity tile: the block of positions whose largest key the tile writes. */
export const SIMILARITY_BLOCK = TILE_COLUMNS;

/**
 * One workgroup per (slot, centroid tile, row tile), row tiles fastest. Bindings: 1 raw rows
 * (row-major `[slot][count][dim]` from row `P.rowBase`), 2 centroids (call-wide `[P.slotBase +
 * slot / P.groupSize][C][dim]`), 3 `sim` (`[slot][C][count]`), 4 block keys (`[slot][C][rowTiles]`),
 * 5 each row's (shift, scale) (`[slot][count]`; `P.mode` 0 = l2, 1 = layernorm).
 */
export function similarityTileWgsl(dim: number): string {
  const vectorized = dim % 4 === 0;
  const element = vectorized ? 'vec4<f32>' : 'f32';
  const zero = vectorized ? 'vec4<f32>(0.0)' : '0.0';
  const index = (base: string) => (vectorized ? `(${base}) / 4u` : base);
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

var<workgroup> scratch: array<vec4<f32>, ${operandScratchVec4(SIMILARITY_TILE)}>;
var<workgroup> rowKeys: array<u32, BR * TC>;
${orderKeyWgsl}

// Channel(s) e of centroid c / row i (0 outside the operand).
fn centroidAt(cslot: u32, c: u32, e: u32) -> ${element} {
  if (c >= P.clusters || e >= D) { return ${zero}; }
  return centroids[${index('(cslot * P.clusters + c) * D + e')}];
}

fn rowAt(slot: u32, i: u32, e: u32) -> ${element} {
  if (i >= P.count || e >= D) { return ${zero}; }
  let a = affine[slot * P.count + i];
  let v = x[${index('(P.rowBase + slot * P.count + i) * D + e')}];
  return select((v - a.x) * a.y, v * a.y, P.mode == 0u);
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${linearWorkgroup}
  let perSlot = P.rowTiles * P.clusterTiles;
  if (linear >= P.slots * perSlot) { return; }
  let slot = linear / perSlot;
  let c0 = ((linear % perSlot) / P.rowTiles) * BR;
  let i0 = (linear % P.rowTiles) * BC;
  let cslot = P.slotBase + slot / P.groupSize;
  let tx = lid % TC;
  let ty = lid / TC;
${zeroScores('  ')}
${scoreTileWgsl(SIMILARITY_TILE, 'D', (r, e) => `centroidAt(cslot, c0 + ${r}, ${e})`, (c, e) => `rowAt(slot, i0 + ${c}, ${e})`, vectorized)}
${forRows((r) => `  {
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
    }
    rowKeys[(4u * ty + ${r}u) * TC + tx] = best;
  }`)}
  workgroupBarrier();
  // Each centroid's largest key over the tile's rows (0 below every key: no row).
  if (lid < BR && c0 + lid < P.clusters) {
    var best = 0u;
    for (var t = 0u; t < TC; t++) { best = max(best, rowKeys[lid * TC + t]); }
    blockKeys[(slot * P.clusters + c0 + lid) * P.rowTiles + i0 / BC] = best;
  }
}
`;
}

/**
 * One thread per (slot, row): the row's `r` most similar centroids from the similarity columns
 * (ties → lower c) join the row's clusters (`balanced+nearest`): their bits are set in the cluster
 * columns' bits (`balancedTopWWgsl`'s, which run first and zero them). Bindings: 1 `sim`, 2 bits
 * (`[slot][C][⌈count / 32⌉]`).
 */
export function simTopWgsl(r: number): string {
  return /* wgsl */ `
${params}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> sim: array<f32>;
@group(0) @binding(2) var<storage, read_write> bits: array<atomic<u32>>;
const R: u32 = ${r}u;

@compute @workgroup_size(${SIM_TOP_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * P.tilesX) * ${SIM_TOP_THREADS}u + lid;
  if (id >= P.slots * P.count) { return; }
  let slot = id / P.count;
  let i = id % P.count;
  var best: array<u32, ${r}>;
  var bestValue: array<f32, ${r}>;
  var filled = 0u;
  for (var k = 0u; k < P.clusters; k++) {
    let s = sim[(slot * P.clusters + k) * P.count + i];
${insertTopR('    ')}
  }
  let words = (P.count + 31u) / 32u;
  for (var t = 0u; t < filled; t++) { atomicOr(&bits[(slot * P.clusters + best[t]) * words + i / 32u], 1u << (i % 32u)); }
}
`;
}
