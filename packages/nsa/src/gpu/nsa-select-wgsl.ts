/**
 * Kernel: NSA's top-n block selection on the GPU (arXiv:2502.11089 Eq. 10 and the forced blocks,
 * spec §3.3 and §3.7; the WGSL twin of `NsaBlockSelector.select` + `unionWithWindow`), over the
 * block importance the tiled scoring kernel (`nsa-score-tile-wgsl.ts`) left for a row range:
 *
 *   importance       P_t[j] = importance[slot][j][row of the range] if block j's first window is visible to t, else 0
 *   forced           P_t[0] = P_t[IC − f] = +∞ for f < forceLocal                 (IC = floor(t / l′))
 *   selection        I_t = top-n'_{j ≤ IC} P_t[j],  n' = min(n, IC + 1), ties toward the later block
 *   union            I_t ∪ { floor(max(0, t − w + 1) / l′) … IC }                 (combine: 'union')
 *
 * One thread per selection row (KV slot, query t) of the range; consecutive threads are
 * consecutive queries, so the block-major importance (`[slot][block][row]`) is read coalesced. The
 * forced blocks are taken first: they all carry +∞ on the CPU, so among them the CPU's order
 * (score descending, index descending) is plain index descending — the local blocks IC, IC − 1, …,
 * then block 0. If they fill n', those are the picks. Otherwise the thread walks the remaining
 * blocks in ascending order keeping the best n' − forced in registers, ordered (score descending,
 * index descending) like the CPU's `TopKSelector`: a later block with an equal score ranks above
 * a kept one (the insertion passes over equal keys). The picks are sorted ascending and written,
 * merged with the window's blocks under 'union', as one CSR row at a fixed stride.
 *
 * Cost per row: one pass over its IC + 1 block scores (plus ≈ n'·ln(IC/n') insertions of at most
 * n' moves), no barriers; the earlier kernel ran one workgroup per row with a 7-level arg-max
 * reduction per pick (2M workgroups × 16 picks at S = 64k, 32 KV heads).
 */

/** Uniform parameter block of the NSA selection kernel (u32 fields). */
export const NSA_SELECT_PARAMS = [
  'querySeq', 'queryOffset', 'slots', 'tilesX',
  'rowStart', 'rangeRows', 'blocks', 'windows',
  'compressionBlock', 'compressionStride', 'selectionBlock', 'selectedBlocks',
  'window', 'forceInitial', 'forceLocal', 'stride',
  'unionWindow', 'pad0', 'pad1', 'pad2',
] as const;

/** Threads per workgroup of the NSA selection kernel (one selection row each). */
export const NSA_SELECT_THREADS = 64;

/** Compile-time shape of the NSA selection kernel. */
export interface NsaSelectKernelOptions {
  /** Selection blocks of the call, ceil(keySeq / l′). */
  readonly maxBlocks: number;
  /** Most top-n picks of a row, min(n, maxBlocks): the size of the per-thread pick arrays. */
  readonly maxPicks: number;
}

/** Generates the NSA selection kernel. */
export function nsaSelectWgsl(o: NsaSelectKernelOptions): string {
  const picks = Math.max(1, o.maxPicks);
  return /* wgsl */ `
const MP: u32 = ${picks}u;

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

@compute @workgroup_size(${NSA_SELECT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = (wid.x + wid.y * P.tilesX) * ${NSA_SELECT_THREADS}u + lid;
  if (linear >= P.slots * P.rangeRows) { return; }
  // Rows are (KV slot, query) like core's Selection with headScope 'kv'.
  let kvSlot = linear / P.rangeRows;
  let rangeRow = linear % P.rangeRows;
  let i = P.rowStart + rangeRow;
  let row = kvSlot * P.querySeq + i;
  let t = P.queryOffset + i;
  let lp = P.selectionBlock;
  let current = t / lp;
  let n = min(min(P.selectedBlocks, current + 1u), MP);
  var nc = 0u;
  if (t + 1u >= P.compressionBlock) { nc = min(P.windows, (t + 1u - P.compressionBlock) / P.compressionStride + 1u); }
  var picked: array<u32, ${picks}>;
  var keys: array<f32, ${picks}>;
  // Forced blocks, index descending: the local run [localLow, IC], then block 0.
  var localLow = current + 1u;
  if (P.forceLocal > 0u) { localLow = current + 1u - min(P.forceLocal, current + 1u); }
  var m = 0u;
  for (var j = current + 1u; j > localLow && m < n; j--) { picked[m] = j - 1u; m++; }
  var low = 0u;
  if (P.forceInitial != 0u && localLow > 0u) {
    low = 1u;
    if (m < n) { picked[m] = 0u; m++; }
  }
  // The best n − m of the other blocks [low, localLow), (score descending, index descending).
  let room = n - m;
  var kept = 0u;
  if (room > 0u) {
    let base = kvSlot * P.blocks * P.rangeRows + rangeRow;
    // Four blocks' scores are loaded before they are ranked, so four independent loads are in
    // flight per step of this serial walk.
    for (var j0 = low; j0 < localLow; j0 += 4u) {
      var batch = vec4<f32>(0.0);
      for (var c = 0u; c < 4u; c++) {
        let j = j0 + c;
        var first = 0u;
        if (j * lp >= P.compressionBlock) { first = (j * lp - P.compressionBlock) / P.compressionStride + 1u; }
        if (j < localLow && first < nc) { batch[c] = importance[base + j * P.rangeRows]; }
      }
      for (var c = 0u; c < 4u && j0 + c < localLow; c++) {
        let j = j0 + c;
        let s = batch[c];
        var p = kept;
        if (kept == room) {
          if (s < keys[room - 1u]) { continue; }
          p = room - 1u;
        } else {
          kept++;
        }
        while (p > 0u && s >= keys[p - 1u]) {
          keys[p] = keys[p - 1u];
          picked[m + p] = picked[m + p - 1u];
          p--;
        }
        keys[p] = s;
        picked[m + p] = j;
      }
    }
  }
  let count = m + kept;
  // Ascending block order for the CSR row.
  for (var a = 1u; a < count; a++) {
    let x = picked[a];
    var b = a;
    while (b > 0u && picked[b - 1u] > x) { picked[b] = picked[b - 1u]; b--; }
    picked[b] = x;
  }
  let start = row * P.stride;
  var e = 0u;
  if (P.unionWindow != 0u && P.window > 0u) {
    var firstWindowBlock = 0u;
    if (t + 1u > P.window) { firstWindowBlock = (t + 1u - P.window) / lp; }
    for (var a = 0u; a < count && picked[a] < firstWindowBlock; a++) { indices[start + e] = picked[a]; e++; }
    for (var j = firstWindowBlock; j <= current; j++) { indices[start + e] = j; e++; }
  } else {
    for (var a = 0u; a < count; a++) { indices[start + e] = picked[a]; e++; }
  }
  bounds[2u * row] = start;
  bounds[2u * row + 1u] = start + e;
}
`;
}
