/**
 * Landmark Attention's grouped softmax in WGSL (arXiv:2305.16300 §3.2; spec landmark.md §3.2),
 * one workgroup per (query head, query) row over the row written by {@link landmarkTopKWgsl}
 * (retrieved blocks R ascending, then the query's own block c; with `allBlocks`, `topK = 0`, R is
 * every earlier block and no rows are read), the same closed form the CPU
 * `landmarkGroupedAttention` evaluates as a log-sum-exp merge of exact partial attentions:
 *
 *   own part:     m_c, l_c, a_c = Σ_{j ∈ c, j ≤ p, j not a landmark} e^{s_j − m_c} v_j     (s_j = scale · q·k_j)
 *   block b ∈ R:  o_b = softmax_{j ∈ b \ L_b}(s_j) · v      gate w_b = scale · q·k_{L_b}
 *   o = (e^{m_c} a_c + Σ_b e^{w_b} o_b) / (e^{m_c} l_c + Σ_b e^{w_b})          lse = log of the denominator
 *
 * merged online (running max of the log-weights), so no partial ever over- or underflows. Scores
 * of a block's ℓ tokens are staged in workgroup memory (4·ℓ bytes); each thread owns
 * ⌈Dv / 64⌉ output channels. A landmark's value is never read (its weight is 0).
 *
 * With `ownOnly` the kernel writes the own part alone (o = a_c / l_c, lse = m_c + log l_c): the
 * start of `landmark-block-merge-wgsl.ts`'s fold, where the retrieved blocks' partials come from
 * backend-gpu's key-block-major sparse executor instead of one row re-reading its blocks here.
 */
import { memoKernel } from '@sparse-attn/backend-gpu';

import { paramsStructWgsl, workgroupReduceWgsl } from './wgsl-snippets.js';

/** Uniform parameter block of the grouped softmax kernel (`keyStride`: rows between KV slots in k and v, key t of slot s at row `s · keyStride + t`). */
export const GROUPED_SOFTMAX_PARAMS = [
  'querySeq', 'queryOffset', 'querySlots', 'tilesX',
  'groupSize', 'keySeq', 'span', 'blockLength',
  'scale', 'allBlocks', 'ownOnly', 'keyStride',
] as const;

/** Threads per workgroup of the grouped softmax kernel. */
export const GROUPED_SOFTMAX_THREADS = 64;

/** Workgroup memory of the grouped softmax kernel. */
export function groupedSoftmaxWorkgroupBytes(o: { readonly headDim: number; readonly blockLength: number }): number {
  return 4 * (o.headDim + o.blockLength + GROUPED_SOFTMAX_THREADS + 4);
}

/** Generates the WGSL of the grouped softmax kernel. */
export const groupedSoftmaxWgsl = memoKernel((o: { readonly headDim: number; readonly valueDim: number; readonly blockLength: number }): string => {
  const NT = GROUPED_SOFTMAX_THREADS;
  const perThread = Math.max(1, Math.ceil(o.valueDim / NT));
  return /* wgsl */ `
${paramsStructWgsl(GROUPED_SOFTMAX_PARAMS)}

const NT: u32 = ${NT}u;
const D: u32 = ${o.headDim}u;
const DV: u32 = ${o.valueDim}u;
const VPT: u32 = ${perThread}u;
const NEG: f32 = -3.4e38;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read> bounds: array<u32>;
@group(0) @binding(7) var<storage, read> indices: array<u32>;

var<workgroup> qs: array<f32, ${o.headDim}>;
var<workgroup> sc: array<f32, ${o.blockLength}>;
var<workgroup> red: array<f32, ${NT}>;
var<workgroup> retrieved: u32;

var<private> lid: u32;
var<private> kvSlot: u32;
var<private> partMax: f32;
var<private> partSum: f32;
var<private> partAcc: array<f32, ${perThread}>;

fn dotKey(t: u32) -> f32 {
  let kRow = (kvSlot * P.keyStride + t) * D;
  var s = 0.0;
  for (var c = 0u; c < D; c++) { s += qs[c] * k[kRow + c]; }
  return s;
}

// Softmax statistics and unnormalised value sums of keys [start, start + len): partMax, partSum, partAcc.
fn part(start: u32, len: u32) {
  var m = NEG;
  for (var t = lid; t < len; t += NT) {
    let s = P.scale * dotKey(start + t);
    sc[t] = s;
    m = max(m, s);
  }
  red[lid] = m;
  workgroupBarrier();
${workgroupReduceWgsl('red', 'max', '  ')}
  let rowMax = red[0];
  workgroupBarrier();
  var l = 0.0;
  for (var t = lid; t < len; t += NT) {
    let e = exp(sc[t] - rowMax);
    sc[t] = e;
    l += e;
  }
  red[lid] = l;
  workgroupBarrier();
${workgroupReduceWgsl('red', 'sum', '  ')}
  partMax = rowMax;
  partSum = red[0];
  for (var u = 0u; u < VPT; u++) {
    let c = lid + u * NT;
    var a = 0.0;
    if (c < DV) {
      for (var t = 0u; t < len; t++) { a += sc[t] * v[(kvSlot * P.keyStride + start + t) * DV + c]; }
    }
    partAcc[u] = a;
  }
  workgroupBarrier();
}

@compute @workgroup_size(${NT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) localIndex: u32) {
  lid = localIndex;
  let row = wid.x + wid.y * P.tilesX;
  if (row >= P.querySlots * P.querySeq) { return; }
  let querySlot = row / P.querySeq;
  let i = row % P.querySeq;
  kvSlot = querySlot / P.groupSize;
  let p = P.queryOffset + i;
  for (var c = lid; c < D; c += NT) { qs[c] = q[(querySlot * P.querySeq + i) * D + c]; }
  // allBlocks (topK = 0): every earlier block, without selection rows; else the row's retrieved blocks.
  var first = 0u;
  if (P.allBlocks == 0u) { first = bounds[2u * row]; }
  if (lid == 0u) {
    if (P.ownOnly == 1u) {
      retrieved = 0u;
    } else if (P.allBlocks == 1u) {
      retrieved = p / P.span;
    } else {
      retrieved = bounds[2u * row + 1u] - first - 1u;
    }
  }
  let n = workgroupUniformLoad(&retrieved);
  // The own block: its ordinary tokens up to the query.
  let own = (p / P.span) * P.span;
  part(own, min(p + 1u, own + P.blockLength) - own);
  var m = partMax;
  var l = partSum;
  var acc: array<f32, ${perThread}>;
  for (var u = 0u; u < VPT; u++) { acc[u] = partAcc[u]; }
  for (var x = 0u; x < n; x++) {
    var blockIndex = x;
    if (P.allBlocks == 0u) { blockIndex = indices[first + x]; }
    let start = blockIndex * P.span;
    let gate = P.scale * dotKey(start + P.blockLength);
    part(start, P.blockLength);
    let mNew = max(m, gate);
    let keepOld = exp(m - mNew);
    let weight = exp(gate - mNew) / partSum;
    for (var u = 0u; u < VPT; u++) { acc[u] = acc[u] * keepOld + partAcc[u] * weight; }
    l = l * keepOld + exp(gate - mNew);
    m = mNew;
  }
  for (var u = 0u; u < VPT; u++) {
    let c = lid + u * NT;
    if (c < DV) { out[(querySlot * P.querySeq + i) * DV + c] = acc[u] / l; }
  }
  if (lid == 0u) { lse[querySlot * P.querySeq + i] = m + log(l); }
}
`;
});
