/**
 * Kernel: NSA's compression-branch block importance on the GPU, register-tiled (arXiv:2502.11089
 * Eq. 8–10, spec §3.3; the tiled twin of `nsa-block-selector.ts` `scoreWindows` + the overlap
 * mapping of `select`):
 *
 *   visible windows  NC(t) = floor((t + 1 − l) / d) + 1                         (complete, ending ≤ t)
 *   pass 1           lse_t^h = log Σ_{i < NC(t)} exp(scale · q_t^h · k̃_i)        (online, per query head h)
 *   pass 2           p_t[i] = Σ_{h ∈ group} exp(scale · q_t^h · k̃_i − lse_t^h)  (Eq. 8 + Eq. 10, heads in order)
 *                    P_t[j] = Σ_{i : window i overlaps block j} p_t[i]          (Eq. 9, windows in order)
 *
 * 'quest' scores replace q·k̃_i by [q⁺ | q⁻] · [max_i | min_i] (width 2·D).
 *
 * One workgroup per (KV slot, tile of BR consecutive queries of a row range). Both passes walk the
 * tile's visible windows 64 at a time through backend-gpu's register micro-tile (`scoreTileWgsl`:
 * BR queries × 64 windows, each pooled window read once per BR queries instead of once per query);
 * pass 2 recomputes the logits instead of storing them. The tile's group-summed probabilities go
 * through workgroup memory (BR × 64) and are mapped onto the selection blocks they overlap:
 * `importance[slot][block][row of the range]` (block-major, so the one-thread-per-row top-n reads
 * consecutive rows of a block coalesced, and this kernel's consecutive threads write them) is assigned by the window tile holding a block's first
 * overlapping window and added to by later ones, so each block's sum runs in window order. Blocks
 * whose first window is not visible to a row are never written for it: the top-n kernel
 * (`nsa-select-wgsl.ts`) reads them as 0. The caller sizes the row range so that the importance
 * scratch stays far below rows × S (at S = 64k: 1024 blocks per row).
 */
import { forRows, linearWorkgroup, operandScratchVec4, scoreTileWgsl, tileOperands, tileConstants, type TileShape, memoKernel } from '@sparse-attn/backend-gpu';

/**
 * WGSL: the complete compression windows visible to the query at absolute position t,
 * NC(t) = floor((t + 1 − l) / d) + 1 capped at the call's windows (needs `P.compressionBlock`,
 * `P.compressionStride`, `P.windows`). Shared by the scoring, decode-scoring and top-n kernels.
 */
export const VISIBLE_WINDOWS_WGSL = /* wgsl */ `/** Visible complete windows of the query at absolute position t. */
fn visible(t: u32) -> u32 {
  if (t + 1u < P.compressionBlock) { return 0u; }
  return min(P.windows, (t + 1u - P.compressionBlock) / P.compressionStride + 1u);
}`;

/** Uniform parameter block of the scoring kernel (u32 fields except `scale`). */
export const NSA_SCORE_PARAMS = [
  'querySeq', 'queryOffset', 'slots', 'tilesX',
  'rowStart', 'rangeRows', 'rowTiles', 'windows',
  'compressionBlock', 'compressionStride', 'selectionBlock', 'blocks',
  'scale', 'pad0', 'pad1', 'pad2',
] as const;

/** Compile-time shape of the scoring kernel. */
export interface NsaScoreKernelOptions {
  readonly headDim: number;
  /** Query heads per KV head (G), summed per window in head order. */
  readonly groupSize: number;
  readonly quest: boolean;
  /** The query tile (`nsa-gpu.ts` uses 64 rows, 256 threads). */
  readonly tile: TileShape;
  /**
   * Write each window's scaled logit instead of its probability, in one pass (no log-sum-exp
   * pass). Only for G = 1 with every selection block exactly one window (l = d = l′): there
   * P_t[j] = exp(logit_j − lse_t), a strictly increasing function of the logit within a row, so the
   * top-n kernel ranks the logits in the same order (`nsaPlan` decides; the top-n kernel takes the
   * same option).
   */
  readonly logits?: boolean;
  /** Every selection block is exactly one window (l = d = l′): pass 2 writes from registers ({@link directWrite}). */
  readonly windowPerBlock?: boolean;
}

/** Stride of a row of the probability tile in workgroup memory (64 windows + 1 against bank conflicts). */
const PROB_STRIDE = 65;

/** Bytes of workgroup memory the kernel declares. */
export function nsaScoreWorkgroupBytes(o: NsaScoreKernelOptions): number {
  return 16 * operandScratchVec4(o.tile) + 4 * (o.tile.rows * PROB_STRIDE + o.tile.rows);
}

/** Generates the scoring kernel. */
export const nsaScoreWgsl = memoKernel(function nsaScoreWgsl(o: NsaScoreKernelOptions): string {
  const quest = o.quest;
  const rows = o.tile.rows;
  // vec4 operand loads where the head dim allows (the micro-tile's products are the same either way).
  const { vectorized, element, zero: zero4, at } = tileOperands(o.tile, o.headDim);
  const tile = scoreTileWgsl(o.tile, 'E', (r, e) => `aAt(${r}, ${e}, g, qRow0, tileRows)`, (c, e) => `bAt(${c}, ${e}, kRow0, w0, ncMax)`, vectorized);
  const zero = ['s0', 's1', 's2', 's3'].map((s) => `        var ${s} = vec4<f32>(0.0);`).join('\n');
  // s_i ← scale · logit where window (w0 + column) is visible to the row, NEG elsewhere.
  const mask = forRows((i) => `        let ok${i} = vec4<bool>(live[${i}]) & (cols < vec4<u32>(nc[${i}]));
        s${i} = select(vec4<f32>(NEG), s${i} * P.scale, ok${i});`);
  return /* wgsl */ `
${tileConstants(o.tile)}
const D: u32 = ${o.headDim}u;
const E: u32 = ${quest ? 2 * o.headDim : o.headDim}u;
const G: u32 = ${o.groupSize}u;
const PS: u32 = ${PROB_STRIDE}u;

struct Params {
  querySeq: u32, queryOffset: u32, slots: u32, tilesX: u32,
  rowStart: u32, rangeRows: u32, rowTiles: u32, windows: u32,
  compressionBlock: u32, compressionStride: u32, selectionBlock: u32, blocks: u32,
  scale: f32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<${element}>;
@group(0) @binding(2) var<storage, read> keys: array<${element}>;
@group(0) @binding(3) var<storage, read_write> importance: array<f32>;

var<workgroup> scratch: array<vec4<f32>, ${operandScratchVec4(o.tile)}>;
// Row reductions of pass 1 (stride 17), then the BR × 64 probability tile of pass 2 (stride PS).
var<workgroup> red: array<f32, ${rows * PROB_STRIDE}>;
var<workgroup> rowLse: array<f32, ${rows}>;

${VISIBLE_WINDOWS_WGSL}

/** Operand A: query row r of the tile (head g), ${quest ? '[q⁺ | q⁻]' : 'q'}; qRow0 = the tile's first q row of head 0${vectorized ? ' (channels e … e + 3)' : ''}. */
fn aAt(r: u32, e: u32, g: u32, qRow0: u32, tileRows: u32) -> ${element} {
  if (r >= tileRows || e >= E) { return ${zero4}; }
  let row = qRow0 + g * P.querySeq + r;
${quest ? `  if (e < D) { return max(q[${at('row', 'e', 'D')}], ${zero4}); }
  return min(q[${at('row', 'e - D', 'D')}], ${zero4});` : `  return q[${at('row', 'e', 'D')}];`}
}

/** Operand B: pooled window w0 + c of the slot (${quest ? '[max | min]' : 'the mean key'}), 0 past the tile's visible windows. */
fn bAt(c: u32, e: u32, kRow0: u32, w0: u32, ncMax: u32) -> ${element} {
  let w = w0 + c;
  if (w >= ncMax || e >= E) { return ${zero4}; }
  return keys[${at('kRow0 + w', 'e', 'E')}];
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${linearWorkgroup}
  let tx = lid % TC;
  let ty = lid / TC;
  if (linear >= P.slots * P.rowTiles) { return; }
  let slot = linear / P.rowTiles;
  let r0 = (linear % P.rowTiles) * BR;
  let tileRows = min(BR, P.rangeRows - r0);
  let i0 = P.rowStart + r0;
  let ncMax = visible(P.queryOffset + i0 + tileRows - 1u);
  if (ncMax == 0u) { return; }
  let qRow0 = slot * G * P.querySeq + i0;
  let kRow0 = slot * P.windows;
  let rows4 = vec4<u32>(4u * ty, 4u * ty + 1u, 4u * ty + 2u, 4u * ty + 3u);
  let live = rows4 < vec4<u32>(tileRows);
  let nc = vec4<u32>(visible(P.queryOffset + i0 + rows4.x), visible(P.queryOffset + i0 + rows4.y), visible(P.queryOffset + i0 + rows4.z), visible(P.queryOffset + i0 + rows4.w));
${o.logits ? '' : `  // Pass 1: each head's log-sum-exp over the row's visible windows (online across window tiles),
  // kept per thread for its 4 rows (registers, so workgroup memory does not grow with G).
  var lseRows: array<vec4<f32>, G>;
  for (var g = 0u; g < G; g++) {
    var m = vec4<f32>(NEG);
    var l = vec4<f32>(0.0);
    for (var w0 = 0u; w0 < ncMax; w0 += BC) {
${zero}
${tile}
        let cols = vec4<u32>(w0 + tx, w0 + tx + 16u, w0 + tx + 32u, w0 + tx + 48u);
${mask}
${forRows((i) => `        let mNew${i} = max(m[${i}], max(max(s${i}.x, s${i}.y), max(s${i}.z, s${i}.w)));
        l[${i}] = l[${i}] * exp(m[${i}] - mNew${i}) + dot(select(vec4<f32>(0.0), exp(s${i} - vec4<f32>(mNew${i})), ok${i}), vec4<f32>(1.0));
        m[${i}] = mNew${i};`)}
    }
${forRows((i) => `    red[(4u * ty + ${i}u) * 17u + tx] = m[${i}];`)}
    workgroupBarrier();
    var rowMax = vec4<f32>(NEG);
    for (var j = 0u; j < TC; j++) {
      rowMax = max(rowMax, vec4<f32>(red[(4u * ty) * 17u + j], red[(4u * ty + 1u) * 17u + j], red[(4u * ty + 2u) * 17u + j], red[(4u * ty + 3u) * 17u + j]));
    }
    workgroupBarrier();
${forRows((i) => `    red[(4u * ty + ${i}u) * 17u + tx] = l[${i}] * exp(m[${i}] - rowMax[${i}]);`)}
    workgroupBarrier();
    if (tx == 0u) {
${forRows((i) => `      var sum${i} = 0.0;
      for (var j = 0u; j < TC; j++) { sum${i} += red[(4u * ty + ${i}u) * 17u + j]; }
      rowLse[4u * ty + ${i}u] = select(-NEG, rowMax[${i}] + log(sum${i}), sum${i} > 0.0);`)}
    }
    workgroupBarrier();
    lseRows[g] = vec4<f32>(rowLse[4u * ty], rowLse[4u * ty + 1u], rowLse[4u * ty + 2u], rowLse[4u * ty + 3u]);
    workgroupBarrier();
  }`}
  // Pass 2: group-summed probabilities (or, with \`logits\`, the logits) of 64 windows at a time, mapped onto the blocks they overlap.
  let lp = P.selectionBlock;
  for (var w0 = 0u; w0 < ncMax; w0 += BC) {
    var p0 = vec4<f32>(0.0);
    var p1 = vec4<f32>(0.0);
    var p2 = vec4<f32>(0.0);
    var p3 = vec4<f32>(0.0);
    for (var g = 0u; g < G; g++) {
${zero}
${tile}
        let cols = vec4<u32>(w0 + tx, w0 + tx + 16u, w0 + tx + 32u, w0 + tx + 48u);
${mask}
${forRows((i) => (o.logits ? `        p${i} = s${i};` : `        p${i} += select(vec4<f32>(0.0), exp(s${i} - vec4<f32>(lseRows[g][${i}])), ok${i});`))}
    }
${o.windowPerBlock ? directWrite() : `${forRows((i) => [0, 1, 2, 3].map((c) => `    red[(4u * ty + ${i}u) * PS + tx + ${16 * c}u] = p${i}[${c}];`).join('\n'))}
    workgroupBarrier();
    let wLast = min(w0 + BC, ncMax) - 1u;
    let jLow = (w0 * P.compressionStride) / lp;
    let blockSpan = (wLast * P.compressionStride + P.compressionBlock - 1u) / lp - jLow + 1u;
    for (var x = lid; x < tileRows * blockSpan; x += NT) {
      let r = x % tileRows;
      let j = jLow + x / tileRows;
      var first = 0u;
      if (j * lp >= P.compressionBlock) { first = (j * lp - P.compressionBlock) / P.compressionStride + 1u; }
      let last = min(((j + 1u) * lp - 1u) / P.compressionStride, wLast);
      let low = max(first, w0);
      if (low <= last) {
        var v = 0.0;
        for (var c = low; c <= last; c++) { v += red[r * PS + c - w0]; }
        let at = (slot * P.blocks + j) * P.rangeRows + r0 + r;
        if (first >= w0) { importance[at] = v; } else { importance[at] += v; }
      }
    }
    workgroupBarrier();`}
  }
}
`;
});

/**
 * Pass 2's output when every selection block is exactly one window (l = d = l′): block j is
 * window j, so each thread writes its 4 rows × 4 windows straight from registers (consecutive
 * rows of a block are consecutive addresses), without the probability tile in workgroup memory,
 * its barriers, or the overlap mapping's integer divisions. Windows past the tile's last visible
 * one are not written (the top-n kernel reads only windows visible to its row).
 */
function directWrite(): string {
  return forRows((i) => `    if (live[${i}]) {
      let at = slot * P.blocks * P.rangeRows + r0 + 4u * ty + ${i}u;
${[0, 1, 2, 3].map((c) => `      if (w0 + tx + ${16 * c}u < ncMax) { importance[at + (w0 + tx + ${16 * c}u) * P.rangeRows] = p${i}[${c}]; }`).join('\n')}
    }`);
}
