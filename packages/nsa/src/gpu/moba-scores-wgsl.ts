/**
 * Kernel: MoBA's gate scores as register-tiled dot products (the first half of `moba.ts`'s routing):
 *
 *   s_t^h[j] = q_t^h · mean(K[j·B, (j+1)·B))     for the complete blocks j < pooled
 *
 * A workgroup owns 64 consecutive queries of one query head and walks the pooled means 64 at a
 * time through backend-gpu's 4×4-per-thread micro-tile, so each mean is read once per 64 queries
 * instead of once per query. Column tiles past the last query's own block are skipped (no query of
 * the tile can route to them). Scores go to `scores[row · pooled + j]` (rows as core's Selection
 * with headScope 'query'); `moba-select-wgsl.ts` then routes each row from them.
 */
import { forRows, linearWorkgroup, operandScratchVec4, scoreTileWgsl, tileConstants, type TileShape, zeroScores } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the scoring kernel (u32 fields). */
export const MOBA_SCORES_PARAMS = ['querySeq', 'queryOffset', 'groupSize', 'slots', 'tilesX', 'blockSize', 'pooled', 'pad0'] as const;

const TILE: TileShape = { rows: 64, chunk: 16 };

/** Query rows per workgroup of the scoring kernel. */
export const MOBA_SCORES_ROWS = TILE.rows;

/** Generates the scoring kernel for head dim D (vec4 loads when D is a multiple of 4). */
export function mobaScoresWgsl(headDim: number): string {
  const vectorized = headDim % 4 === 0;
  const element = vectorized ? 'vec4<f32>' : 'f32';
  const zero = vectorized ? 'vec4<f32>(0.0)' : '0.0';
  const at = (base: string) => (vectorized ? `${base} * (D / 4u) + e / 4u` : `${base} * D + e`);
  return /* wgsl */ `
${tileConstants(TILE)}
const D: u32 = ${headDim}u;

struct Params {
  querySeq: u32, queryOffset: u32, groupSize: u32, slots: u32,
  tilesX: u32, blockSize: u32, pooled: u32, pad0: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<${element}>;
@group(0) @binding(2) var<storage, read> means: array<${element}>;
@group(0) @binding(3) var<storage, read_write> scores: array<f32>;

var<workgroup> scratch: array<vec4<f32>, ${operandScratchVec4(TILE)}>;

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
  let querySlot = linear / tiles;
  let i0 = (linear % tiles) * BR;
  let meanBase = (querySlot / P.groupSize) * P.pooled;
  let lastRow = min(i0 + BR, P.querySeq) - 1u;
  // Blocks before the last query's own block: the only ones any query of the tile scores.
  let reach = min(P.pooled, (P.queryOffset + lastRow) / P.blockSize);
  for (var j0 = 0u; j0 < reach; j0 += BC) {
${zeroScores('    ')}
${scoreTileWgsl(TILE, 'D', (r, e) => `qAt(select(INVALID, querySlot * P.querySeq + i0 + (${r}), i0 + (${r}) < P.querySeq), ${e})`, (c, e) => `meanAt(j0 + ${c}, ${e}, meanBase)`, vectorized)}
${forRows(
  (i) => `    {
      let i = i0 + 4u * ty + ${i}u;
      if (i < P.querySeq) {
        let base = (querySlot * P.querySeq + i) * P.pooled;
        for (var c = 0u; c < 4u; c++) {
          let j = j0 + tx + 16u * c;
          if (j < P.pooled) { scores[base + j] = s${i}[c]; }
        }
      }
    }`,
)}
  }
}
`;
}
