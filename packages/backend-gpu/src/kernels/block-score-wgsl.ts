/**
 * Block importance in WGSL, per selection row (a query block, times the query heads of a GQA
 * group) and key block j, in two passes over the row's causally visible blocks:
 *
 *   z_ij = scale · Σ_d max(q_id · max_jd, q_id · min_jd)     ('quest': Quest's upper bound on q·k)
 *   z_ij = scale · q_i · mean_j                               ('mean': NSA-style pooled keys)
 *   pass 1: lse_i = log Σ_{j visible to i} e^{z_ij}
 *   pass 2: score_j = Σ_i e^{z_ij − lse_i}                    (NSA's p_slc summed over the row)
 *
 * Quest's bound is a dot product of [q⁺ | q⁻] with [max | min] (q⁺ = max(q, 0), q⁻ = min(q, 0)),
 * so both variants run on the shared register-tiled dot-product micro-tile (64 blocks per tile).
 * Summing softmax mass (rather than taking a max over the row's queries) keeps one strongly
 * matching query, e.g. a needle lookup, from being drowned by the row's other queries.
 */
import { memoKernel } from './memo-kernel.js';
import { SELECTION_ROW_WGSL } from './selection-row-wgsl.js';
import { forRows, linearWorkgroup, operandScratchVec4, scoreTileWgsl, tileConstants, type TileShape, zeroScores } from './score-tile-wgsl.js';

/** How a query scores a key block. */
export type BlockScoring = 'quest' | 'mean';

/** Uniform parameter block of the scoring kernel. */
export const SCORE_PARAMS = [
  'querySeq', 'keySeq', 'queryOffset', 'groupSize',
  'slots', 'tilesX', 'scale', 'selRows',
  'queryBlockSize', 'blockSize', 'blocks', 'pad0',
] as const;

/** Generates the WGSL of the block scoring kernel. */
export const blockScoreWgsl = memoKernel(function blockScoreWgsl(o: { headDim: number; scoring: BlockScoring; tile: TileShape }): string {
  const quest = o.scoring === 'quest';
  const width = quest ? 2 * o.headDim : o.headDim;
  return /* wgsl */ `
${tileConstants(o.tile)}
const D: u32 = ${o.headDim}u;
const E: u32 = ${width}u;

struct Params {
  querySeq: u32, keySeq: u32, queryOffset: u32, groupSize: u32,
  slots: u32, tilesX: u32, scale: f32, selRows: u32,
  queryBlockSize: u32, blockSize: u32, blocks: u32, pad0: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> pooledA: array<f32>;
@group(0) @binding(3) var<storage, read> pooledB: array<f32>;
@group(0) @binding(4) var<storage, read_write> scores: array<f32>;

var<workgroup> scratch: array<vec4<f32>, ${operandScratchVec4(o.tile)}>;
var<workgroup> red: array<f32, ${o.tile.rows * 17}>;
var<workgroup> colSum: array<f32, ${(o.tile.rows / 4) * 65}>;
var<workgroup> rowQ: array<u32, ${o.tile.rows}>;
var<workgroup> rowPos: array<u32, ${o.tile.rows}>;
var<workgroup> rowLse: array<f32, ${o.tile.rows}>;

fn aAt(r: u32, e: u32) -> f32 {
  let row = rowQ[r];
  if (row == INVALID || e >= E) { return 0.0; }
${quest ? `  if (e < D) { return max(q[row * D + e], 0.0); }
  return min(q[row * D + e - D], 0.0);` : '  return q[row * D + e];'}
}

fn bAt(c: u32, e: u32, blockBase: u32, block0: u32, visible: u32) -> f32 {
  let blockIndex = block0 + c;
  if (blockIndex >= visible || e >= E) { return 0.0; }
${quest ? `  if (e < D) { return pooledA[(blockBase + blockIndex) * D + e]; }
  return pooledB[(blockBase + blockIndex) * D + e - D];` : '  return pooledA[(blockBase + blockIndex) * D + e];'}
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${linearWorkgroup}
  let tx = lid % TC;
  let ty = lid / TC;
  if (linear >= P.selRows * P.slots) { return; }${SELECTION_ROW_WGSL}
  let tileRows = P.groupSize * rowQueries;
  let blockBase = slot * P.blocks;
  let scoreBase = (slot * P.selRows + r) * P.blocks;
  for (var sub = 0u; sub * BR < tileRows; sub++) {
    workgroupBarrier();
    if (lid < BR) {
      let t = sub * BR + lid;
      let i = r * P.queryBlockSize + t % rowQueries;
      let querySlot = slot * P.groupSize + t / rowQueries;
      rowQ[lid] = select(INVALID, querySlot * P.querySeq + i, t < tileRows);
      rowPos[lid] = P.queryOffset + i;
    }
    workgroupBarrier();
    let pos = vec4<u32>(rowPos[4u * ty], rowPos[4u * ty + 1u], rowPos[4u * ty + 2u], rowPos[4u * ty + 3u]);
    let live = vec4<bool>(rowQ[4u * ty] != INVALID, rowQ[4u * ty + 1u] != INVALID, rowQ[4u * ty + 2u] != INVALID, rowQ[4u * ty + 3u] != INVALID);
    var m = vec4<f32>(NEG);
    var l = vec4<f32>(0.0);
    for (var phase = 0u; phase < 2u; phase++) {
      for (var block0 = 0u; block0 < visible; block0 += BC) {
${zeroScores('        ')}
${scoreTileWgsl(o.tile, 'E', (r, e) => `aAt(${r}, ${e})`, (c, e) => `bAt(${c}, ${e}, blockBase, block0, visible)`)}
        let blocks = vec4<u32>(block0 + tx, block0 + tx + 16u, block0 + tx + 32u, block0 + tx + 48u);
        let starts = blocks * P.blockSize;
        let inRange = blocks < vec4<u32>(visible);
${forRows((i) => `        let ok${i} = inRange & vec4<bool>(live[${i}]) & (starts <= vec4<u32>(pos[${i}]));
        s${i} = select(vec4<f32>(NEG), s${i} * P.scale, ok${i});`)}
        if (phase == 0u) {
${forRows((i) => `          let mNew${i} = max(m[${i}], max(max(s${i}.x, s${i}.y), max(s${i}.z, s${i}.w)));
          l[${i}] = l[${i}] * exp(m[${i}] - mNew${i}) + dot(select(vec4<f32>(0.0), exp(s${i} - vec4<f32>(mNew${i})), ok${i}), vec4<f32>(1.0));
          m[${i}] = mNew${i};`)}
        } else {
          var colTotal = vec4<f32>(0.0);
${forRows((i) => `          colTotal += select(vec4<f32>(0.0), exp(s${i} - vec4<f32>(rowLse[4u * ty + ${i}u])), ok${i});`)}
${[0, 1, 2, 3].map((c) => `          colSum[ty * 65u + tx + ${16 * c}u] = colTotal[${c}];`).join('\n')}
          workgroupBarrier();
          if (lid < BC && block0 + lid < visible) {
            var total = 0.0;
            for (var y = 0u; y < TR; y++) { total += colSum[y * 65u + lid]; }
            let at = scoreBase + block0 + lid;
            if (sub == 0u) { scores[at] = total; } else { scores[at] += total; }
          }
        }
      }
      if (phase == 0u) {
        // Combine the per-thread (max, sum) pairs of each row into its log-sum-exp.
${forRows((i) => `        red[(4u * ty + ${i}u) * 17u + tx] = m[${i}];`)}
        workgroupBarrier();
        var rowMax = vec4<f32>(NEG);
        for (var j = 0u; j < TC; j++) {
          rowMax = max(rowMax, vec4<f32>(red[(4u * ty) * 17u + j], red[(4u * ty + 1u) * 17u + j], red[(4u * ty + 2u) * 17u + j], red[(4u * ty + 3u) * 17u + j]));
        }
        workgroupBarrier();
${forRows((i) => `        red[(4u * ty + ${i}u) * 17u + tx] = l[${i}] * exp(m[${i}] - rowMax[${i}]);`)}
        workgroupBarrier();
        if (tx == 0u) {
${forRows((i) => `          var sum${i} = 0.0;
          for (var j = 0u; j < TC; j++) { sum${i} += red[(4u * ty + ${i}u) * 17u + j]; }
          rowLse[4u * ty + ${i}u] = select(-NEG, rowMax[${i}] + log(sum${i}), sum${i} > 0.0);`)}
        }
        workgroupBarrier();
      }
    }
  }
}
`;
});
