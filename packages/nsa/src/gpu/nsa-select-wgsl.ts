/**
 * Kernel: NSA's top-n block selection on the GPU (arXiv:2502.11089 Eq. 10 and the forced blocks,
 * spec §3.3 and §3.7; the WGSL twin of `NsaBlockSelector.select` + `unionWithWindow`), over the
 * block importance the tiled scoring kernel (`nsa-score-tile-wgsl.ts`) left for a row range:
 *
 *   importance       P_t[j] = importance[row][j] if block j's first window is visible to t, else 0
 *   forced           P_t[0] = P_t[IC − f] = +∞ (BIG) for f < forceLocal         (IC = floor(t / l′))
 *   selection        I_t = top-n'_{j ≤ IC} P_t[j],  n' = min(n, IC + 1), ties toward the later block
 *   union            I_t ∪ { floor(max(0, t − w + 1) / l′) … IC }                 (combine: 'union')
 *
 * One workgroup per selection row (KV slot, query t) of the range. The row's candidates go to
 * workgroup memory, the arg-max passes (`top-k-passes-wgsl.ts`) pick the top-n', and thread 0
 * writes the sorted blocks, merged with the window's blocks under 'union', as one CSR row at a
 * fixed stride.
 */
import { SORT_PICKS_WGSL, TOP_K_PASSES_WGSL } from './top-k-passes-wgsl.js';

/** Uniform parameter block of the NSA selection kernel (u32 fields). */
export const NSA_SELECT_PARAMS = [
  'querySeq', 'queryOffset', 'slots', 'tilesX',
  'rowStart', 'rangeRows', 'blocks', 'windows',
  'compressionBlock', 'compressionStride', 'selectionBlock', 'selectedBlocks',
  'window', 'forceInitial', 'forceLocal', 'stride',
  'unionWindow', 'pad0', 'pad1', 'pad2',
] as const;

/** Threads per workgroup of the NSA selection kernel. */
export const NSA_SELECT_THREADS = 128;

/** Compile-time shape of the NSA selection kernel. */
export interface NsaSelectKernelOptions {
  /** Selection blocks of the call, ceil(keySeq / l′). */
  readonly maxBlocks: number;
  /** Most top-n picks of a row, min(n, maxBlocks). */
  readonly maxPicks: number;
}

/** Bytes of workgroup memory the kernel declares. */
export function nsaSelectWorkgroupBytes(o: NsaSelectKernelOptions): number {
  return 4 * (Math.max(1, o.maxBlocks) + 2 * NSA_SELECT_THREADS + Math.max(1, o.maxPicks));
}

/** Generates the NSA selection kernel. */
export function nsaSelectWgsl(o: NsaSelectKernelOptions): string {
  return /* wgsl */ `
const NT: u32 = ${NSA_SELECT_THREADS}u;
const BIG: f32 = 3.0e38;

struct Params {
  querySeq: u32, queryOffset: u32, slots: u32, tilesX: u32,
  rowStart: u32, rangeRows: u32, blocks: u32, windows: u32,
  compressionBlock: u32, compressionStride: u32, selectionBlock: u32, selectedBlocks: u32,
  window: u32, forceInitial: u32, forceLocal: u32, stride: u32,
  unionWindow: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> importance: array<f32>;
@group(0) @binding(2) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;

var<workgroup> cand: array<f32, ${Math.max(1, o.maxBlocks)}>;
var<workgroup> bestKey: array<f32, ${NSA_SELECT_THREADS}>;
var<workgroup> bestIndex: array<u32, ${NSA_SELECT_THREADS}>;
var<workgroup> picks: array<u32, ${Math.max(1, o.maxPicks)}>;

@compute @workgroup_size(${NSA_SELECT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.rangeRows) { return; }
  // Rows are (KV slot, query) like core's Selection with headScope 'kv'.
  let kvSlot = linear / P.rangeRows;
  let rangeRow = linear % P.rangeRows;
  let i = P.rowStart + rangeRow;
  let row = kvSlot * P.querySeq + i;
  let t = P.queryOffset + i;
  let lp = P.selectionBlock;
  let current = t / lp;
  let count = current + 1u;
  var nc = 0u;
  if (t + 1u >= P.compressionBlock) { nc = min(P.windows, (t + 1u - P.compressionBlock) / P.compressionStride + 1u); }
  let base = (kvSlot * P.rangeRows + rangeRow) * P.blocks;
  for (var j = lid; j < count; j += NT) {
    var v = 0.0;
    var first = 0u;
    if (j * lp >= P.compressionBlock) { first = (j * lp - P.compressionBlock) / P.compressionStride + 1u; }
    if (first < nc) { v = importance[base + j]; }
    if ((P.forceInitial != 0u && j == 0u) || j + P.forceLocal > current) { v = BIG; }
    cand[j] = v;
  }
  workgroupBarrier();
  let n = min(P.selectedBlocks, count);
${TOP_K_PASSES_WGSL}
  if (lid == 0u) {
${SORT_PICKS_WGSL}
    let start = row * P.stride;
    var m = 0u;
    if (P.unionWindow != 0u && P.window > 0u) {
      var firstWindowBlock = 0u;
      if (t + 1u > P.window) { firstWindowBlock = (t + 1u - P.window) / lp; }
      for (var a = 0u; a < n && picks[a] < firstWindowBlock; a++) { indices[start + m] = picks[a]; m++; }
      for (var j = firstWindowBlock; j <= current; j++) { indices[start + m] = j; m++; }
    } else {
      for (var a = 0u; a < n; a++) { indices[start + m] = picks[a]; m++; }
    }
    bounds[2u * row] = start;
    bounds[2u * row + 1u] = start + m;
  }
}
`;
}
