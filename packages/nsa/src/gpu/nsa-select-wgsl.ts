/**
 * Kernel: NSA's compression-branch scoring and top-n block selection on the GPU (arXiv:2502.11089
 * Eq. 8–10, spec §3.3 and §3.7; the WGSL twin of `nsa-block-selector.ts` + `compressed-logits.ts`).
 *
 *   visible windows  NC(t) = floor((t + 1 − l) / d) + 1                       (complete, ending ≤ t)
 *   Eq. 8            p_t^{cmp,h}[i] = softmax_i(scale · q_t^h · k̃_i),  i < NC(t)  (per query head h)
 *   Eq. 9 (overlap)  p_t^slc[j] = Σ_{i : window i overlaps block j} p_t^cmp[i]  (summed in i order)
 *   Eq. 10 (GQA)     P_t[j] = Σ_{h ∈ group} p_t^{slc,h}[j]
 *   forced           P_t[0] = P_t[IC − f] = +∞ (BIG) for f < forceLocal         (IC = floor(t / l′))
 *   selection        I_t = top-n'_{j ≤ IC} P_t[j],  n' = min(n, IC + 1), ties toward the later block
 *   union            I_t ∪ { floor(max(0, t − w + 1) / l′) … IC }                 (combine: 'union')
 *
 * 'quest' scores replace q·k̃_i by Σ_c max(q_c·max_ic, q_c·min_ic) = q⁺·max_i + q⁻·min_i.
 *
 * One workgroup per selection row (KV slot, query t). Each thread keeps the logits of its windows
 * (i ≡ lid mod NT) in registers; per query head of the group a max- and a sum-reduction give the
 * softmax, and each thread adds its windows' probabilities into `prob` (workgroup memory, one
 * owner per window, heads summed in order like the CPU). Block importance, forcing and the
 * arg-max passes (`top-k-passes-wgsl.ts`) follow in workgroup memory; thread 0 writes the sorted
 * blocks, merged with the window's blocks under 'union', as one CSR row at a fixed stride. No
 * (rows × windows) buffer exists anywhere: the only scratch is the pooled keys.
 */
import { SORT_PICKS_WGSL, TOP_K_PASSES_WGSL } from './top-k-passes-wgsl.js';

/** Uniform parameter block of the NSA selection kernel (u32 fields except `scale`). */
export const NSA_SELECT_PARAMS = [
  'querySeq', 'queryOffset', 'slots', 'tilesX',
  'compressionBlock', 'compressionStride', 'selectionBlock', 'windows',
  'selectedBlocks', 'window', 'forceInitial', 'forceLocal',
  'stride', 'unionWindow', 'scale', 'pad0',
] as const;

/** Threads per workgroup of the NSA selection kernel. */
export const NSA_SELECT_THREADS = 128;

/** Compile-time shape of the NSA selection kernel. */
export interface NsaSelectKernelOptions {
  readonly headDim: number;
  /** Query heads per KV head (G). */
  readonly groupSize: number;
  /** Largest number of visible windows of a row (the pooled windows of the call). */
  readonly maxWindows: number;
  /** Selection blocks of the call, ceil(keySeq / l′). */
  readonly maxBlocks: number;
  /** Most top-n picks of a row, min(n, maxBlocks). */
  readonly maxPicks: number;
  readonly quest: boolean;
}

/** Bytes of workgroup memory the kernel declares. */
export function nsaSelectWorkgroupBytes(o: NsaSelectKernelOptions): number {
  return 4 * (Math.max(1, o.maxWindows) + Math.max(1, o.maxBlocks) + 3 * NSA_SELECT_THREADS + Math.max(1, o.maxPicks));
}

/** Generates the NSA selection kernel. */
export function nsaSelectWgsl(o: NsaSelectKernelOptions): string {
  const per = Math.max(1, Math.ceil(o.maxWindows / NSA_SELECT_THREADS));
  const dot = o.quest
    ? `  for (var c = 0u; c < D; c++) {
    let x = q[qBase + c];
    s += max(x, 0.0) * keys[kBase + c] + min(x, 0.0) * keys[kBase + D + c];
  }`
    : '  for (var c = 0u; c < D; c++) { s += q[qBase + c] * keys[kBase + c]; }';
  return /* wgsl */ `
const NT: u32 = ${NSA_SELECT_THREADS}u;
const D: u32 = ${o.headDim}u;
const E: u32 = ${o.quest ? 2 * o.headDim : o.headDim}u;
const G: u32 = ${o.groupSize}u;
const PER: u32 = ${per}u;
const BIG: f32 = 3.0e38;
const NEG: f32 = -3.0e38;

struct Params {
  querySeq: u32, queryOffset: u32, slots: u32, tilesX: u32,
  compressionBlock: u32, compressionStride: u32, selectionBlock: u32, windows: u32,
  selectedBlocks: u32, window: u32, forceInitial: u32, forceLocal: u32,
  stride: u32, unionWindow: u32, scale: f32, pad0: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> keys: array<f32>;
@group(0) @binding(3) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(4) var<storage, read_write> indices: array<u32>;

var<workgroup> prob: array<f32, ${Math.max(1, o.maxWindows)}>;
var<workgroup> cand: array<f32, ${Math.max(1, o.maxBlocks)}>;
var<workgroup> red: array<f32, ${NSA_SELECT_THREADS}>;
var<workgroup> bestKey: array<f32, ${NSA_SELECT_THREADS}>;
var<workgroup> bestIndex: array<u32, ${NSA_SELECT_THREADS}>;
var<workgroup> picks: array<u32, ${Math.max(1, o.maxPicks)}>;

fn logit(qBase: u32, kBase: u32) -> f32 {
  var s = 0.0;
${dot}
  return s;
}

@compute @workgroup_size(${NSA_SELECT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * P.tilesX;
  if (row >= P.slots * P.querySeq) { return; }
  // Rows are (KV slot, query) like core's Selection with headScope 'kv'.
  let kvSlot = row / P.querySeq;
  let i = row % P.querySeq;
  let t = P.queryOffset + i;
  let lp = P.selectionBlock;
  let current = t / lp;
  let count = current + 1u;
  var nc = 0u;
  if (t + 1u >= P.compressionBlock) { nc = min(P.windows, (t + 1u - P.compressionBlock) / P.compressionStride + 1u); }
  for (var c = lid; c < nc; c += NT) { prob[c] = 0.0; }
  if (nc > 0u) {
    for (var g = 0u; g < G; g++) {
      let qBase = ((kvSlot * G + g) * P.querySeq + i) * D;
      var xs: array<f32, PER>;
      var m = NEG;
      var s = 0.0;
      for (var k = 0u; k < PER; k++) {
        let c = lid + k * NT;
        if (c < nc) {
          let x = P.scale * logit(qBase, (kvSlot * P.windows + c) * E);
          xs[k] = x;
          let mNew = max(m, x);
          s = s * exp(m - mNew) + exp(x - mNew);
          m = mNew;
        }
      }
      red[lid] = m;
      workgroupBarrier();
      for (var width = NT / 2u; width > 0u; width = width / 2u) {
        if (lid < width) { red[lid] = max(red[lid], red[lid + width]); }
        workgroupBarrier();
      }
      let rowMax = red[0];
      workgroupBarrier();
      red[lid] = select(0.0, s * exp(m - rowMax), s > 0.0);
      workgroupBarrier();
      for (var width = NT / 2u; width > 0u; width = width / 2u) {
        if (lid < width) { red[lid] += red[lid + width]; }
        workgroupBarrier();
      }
      let rowSum = red[0];
      workgroupBarrier();
      for (var k = 0u; k < PER; k++) {
        let c = lid + k * NT;
        if (c < nc) { prob[c] += exp(xs[k] - rowMax) / rowSum; }
      }
    }
  }
  workgroupBarrier();
  // Block importance: the windows overlapping block j, in window order; then the forced blocks.
  for (var j = lid; j < count; j += NT) {
    var v = 0.0;
    if (nc > 0u) {
      var first = 0u;
      if (j * lp >= P.compressionBlock) { first = (j * lp - P.compressionBlock) / P.compressionStride + 1u; }
      let last = min(((j + 1u) * lp - 1u) / P.compressionStride, nc - 1u);
      for (var c = first; c <= last; c++) { v += prob[c]; }
    }
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
