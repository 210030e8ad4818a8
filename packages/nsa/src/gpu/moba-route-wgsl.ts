/**
 * Kernel: MoBA's gating and top-k routing fused in one pass (arXiv:2502.13189; the WGSL twin of
 * `moba.ts`'s routing), with no gate-score buffer:
 *
 *   gate      s_t^h[j] = q_t^h · mean(K[j·B, (j+1)·B))     for past blocks j < IC = floor(t / B)
 *   forced    s_t^h[IC] = +∞  (the current block, causally masked by the executor)
 *   routing   I_t^h = top-k_{j ≤ IC} s_t^h[j],  k' = min(k, IC + 1), ties toward the later block
 *
 * A workgroup owns 64 consecutive queries of one query head and walks the pooled means 64 blocks
 * at a time through backend-gpu's 4×4-per-thread micro-tile (`scoreTileWgsl`, each mean read once
 * per 64 queries). Column tiles past the last query's own block are skipped: no query of the tile
 * can route to them. After each column tile the 64 × 64 scores go to workgroup memory (row stride
 * 65 floats: thread r reading column c of row r hits bank (r + c) mod 32, so the 64 row scans
 * read without bank conflicts; the micro-tile's stores conflict at most 2-way), and thread r < 64
 * scans its row's visible blocks of the tile in ascending j, keeping the best k' − 1 past blocks
 * in registers, ordered (score descending, index descending) like the CPU's `TopKSelector` — a
 * later block with an equal score ranks above the kept one — after the current block, forced
 * first. After the last tile it writes its picks ascending as one CSR row (`bounds` = start, end;
 * `indices`) at a fixed stride, the layout the backend's sparse executor reads.
 *
 * The scan of tile j0 needs no barrier of its own before tile j0 + 64 overwrites the scores: the
 * overwrite follows the micro-tile's first barrier, which every scanning thread reaches only once
 * its scan is done.
 */
import { forRows, linearWorkgroup, operandScratchVec4, scoreTileWgsl, TILE_COLUMNS, tileConstants, type TileShape, zeroScores } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the routing kernel (u32 fields). */
export const MOBA_ROUTE_PARAMS = ['querySeq', 'queryOffset', 'groupSize', 'slots', 'tilesX', 'blockSize', 'pooled', 'topK', 'stride', 'pad0', 'pad1', 'pad2'] as const;

const TILE: TileShape = { rows: 64, chunk: 16 };

/** Row stride (floats) of the score tile in workgroup memory: 64 columns + 1 against bank conflicts. */
const TILE_STRIDE = TILE_COLUMNS + 1;

/** Query rows per workgroup of the routing kernel (one query head's consecutive queries). */
export const MOBA_ROUTE_ROWS = TILE.rows;

/**
 * Workgroup memory of the routing kernel: the micro-tile's operand chunks (8 704 B) and the
 * 64 × 65-float score tile (16 640 B), 25 344 B whatever the head dim or block count.
 */
export const MOBA_ROUTE_WORKGROUP_BYTES = 16 * operandScratchVec4(TILE) + 4 * TILE.rows * TILE_STRIDE;

/** Options of {@link mobaRouteWgsl}. */
export interface MobaRouteKernelOptions {
  /** Channels of q and of the pooled means (vec4 loads when a multiple of 4). */
  readonly headDim: number;
  /** Bound on the picks per row: min(topK, blocks of the call), the CSR stride. */
  readonly maxPicks: number;
}

/** Generates the fused gate + routing kernel for one head dim and pick bound. */
export function mobaRouteWgsl(o: MobaRouteKernelOptions): string {
  const picks = Math.max(1, o.maxPicks);
  const vectorized = o.headDim % 4 === 0;
  const element = vectorized ? 'vec4<f32>' : 'f32';
  const zero = vectorized ? 'vec4<f32>(0.0)' : '0.0';
  const at = (base: string) => (vectorized ? `${base} * (D / 4u) + e / 4u` : `${base} * D + e`);
  return /* wgsl */ `
${tileConstants(TILE)}
const D: u32 = ${o.headDim}u;
const MP: u32 = ${picks}u;
const TS: u32 = ${TILE_STRIDE}u;
const BIG: f32 = 3.0e38;

struct Params {
  querySeq: u32, queryOffset: u32, groupSize: u32, slots: u32,
  tilesX: u32, blockSize: u32, pooled: u32, topK: u32,
  stride: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<${element}>;
@group(0) @binding(2) var<storage, read> means: array<${element}>;
@group(0) @binding(3) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(4) var<storage, read_write> indices: array<u32>;

var<workgroup> scratch: array<vec4<f32>, ${operandScratchVec4(TILE)}>;
var<workgroup> tile: array<f32, ${TILE.rows * TILE_STRIDE}>;

fn qAt(row: u32, e: u32) -> ${element} {
  if (row == INVALID || e >= D) { return ${zero}; }
  return q[${at('row')}];
}

fn meanAt(block: u32, e: u32, meanBase: u32) -> ${element} {
  if (block >= P.pooled || e >= D) { return ${zero}; }
  return means[${at('(meanBase + block)')}];
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${linearWorkgroup}
  let tx = lid % TC;
  let ty = lid / TC;
  let tiles = (P.querySeq + BR - 1u) / BR;
  if (linear >= tiles * P.slots * P.groupSize) { return; }
  // Query slot = (KV slot, query head of its group): rows as core's Selection with headScope 'query'.
  let querySlot = linear / tiles;
  let i0 = (linear % tiles) * BR;
  let meanBase = (querySlot / P.groupSize) * P.pooled;
  let lastRow = min(i0 + BR, P.querySeq) - 1u;
  // Blocks before the last query's own block: the only ones any query of the tile scores.
  let reach = min(P.pooled, (P.queryOffset + lastRow) / P.blockSize);

  // Routing state of thread lid < BR, which owns query i0 + lid.
  let i = i0 + lid;
  let owner = lid < BR && i < P.querySeq;
  let current = (P.queryOffset + i) / P.blockSize;
  let n = min(min(P.topK, current + 1u), MP);
  var keys: array<f32, ${picks}>;
  var picked: array<u32, ${picks}>;
  keys[0] = BIG;
  picked[0] = current;
  var kept = 1u;

  for (var j0 = 0u; j0 < reach; j0 += BC) {
${zeroScores('    ')}
${scoreTileWgsl(TILE, 'D', (r, e) => `qAt(select(INVALID, querySlot * P.querySeq + i0 + (${r}), i0 + (${r}) < P.querySeq), ${e})`, (c, e) => `meanAt(j0 + ${c}, ${e}, meanBase)`, vectorized)}
${forRows((r) => `    for (var c = 0u; c < 4u; c++) { tile[(4u * ty + ${r}u) * TS + tx + 16u * c] = s${r}[c]; }`)}
    workgroupBarrier();
    if (owner) {
      let end = min(j0 + BC, current);
      for (var j = j0; j < end; j++) {
        let s = tile[lid * TS + (j - j0)];
        var p = kept;
        if (kept == n) {
          if (n == 1u || s < keys[n - 1u]) { continue; }
          p = n - 1u;
        } else {
          kept++;
        }
        while (p > 0u && s >= keys[p - 1u]) {
          keys[p] = keys[p - 1u];
          picked[p] = picked[p - 1u];
          p--;
        }
        keys[p] = s;
        picked[p] = j;
      }
    }
  }
  if (!owner) { return; }
  // Ascending block order for the CSR row.
  for (var a = 1u; a < n; a++) {
    let x = picked[a];
    var b = a;
    while (b > 0u && picked[b - 1u] > x) { picked[b] = picked[b - 1u]; b--; }
    picked[b] = x;
  }
  let row = querySlot * P.querySeq + i;
  let start = row * P.stride;
  for (var a = 0u; a < n; a++) { indices[start + a] = picked[a]; }
  bounds[2u * row] = start;
  bounds[2u * row + 1u] = start + n;
}
`;
}
