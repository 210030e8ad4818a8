/**
 * The paper landmark's grouped softmax for decode-shaped calls (at most a few queries per head,
 * backend-gpu's split-K calls), as split-K partials: one workgroup per (selection row, entry)
 * writes a partial record (m, l, o) in backend-gpu's split-K layout (`decodePartialRecord`), and
 * backend-gpu's split-K merge (`decodeMergeWgsl`) combines a row's records into its output and
 * lse. With the grouped softmax of `landmark-block-merge-wgsl.ts`
 *
 *   o = (e^{m_c} a_c + Σ_{b ∈ R} e^{w_b} o_b) / (e^{m_c} l_c + Σ_{b ∈ R} e^{w_b}),   w_b = scale · q·k_{L_b}
 *
 * the own block c gives the record (m_c, l_c, a_c) — its ordinary tokens up to the query, as
 * `landmark-own-block-wgsl.ts` scores them — and a retrieved block b the record (w_b, 1, o_b), o_b
 * the softmax over its ℓ ordinary tokens times their values. The merge's
 * M = max m, L = Σ l·e^{m − M}, out = Σ o·e^{m − M} / L, lse = M + log L is then exactly the
 * grouped softmax and its log-denominator: one pass and one merge instead of prefill's per-entry
 * selection, executor call and gate fold (~20 dispatches over several submissions at top 4).
 * Entries past a row's end (rows that retrieve fewer than the longest row) write m = −3e38, l = 0
 * and o = 0, which weigh nothing.
 *
 * Threads score keys (q staged in workgroup memory; a retrieved block's landmark key is scored
 * with its tokens and is the gate), reduce the max and the sum, then own output channels and sum
 * the probabilities times the values (coalesced across threads).
 */
import { decodePartialRecord, memoKernel } from '@sparse-attn/backend-gpu';
import { paramsStructWgsl, workgroupReduceWgsl } from './wgsl-snippets.js';

/** Uniform parameter block of the decode-parts kernel (`keyStride`: rows between KV slots in k and v). */
export const LANDMARK_DECODE_PARTS_PARAMS = [
  'rows', 'parts', 'tilesX', 'querySeq',
  'queryOffset', 'groupSize', 'keyStride', 'scale',
  'pad0', 'pad1', 'pad2', 'pad3',
] as const;

/** Threads per workgroup of the decode-parts kernel. */
export const LANDMARK_DECODE_THREADS = 64;

/** Workgroup memory of the decode-parts kernel: q, one score per key of a block (landmark included), the reduction. */
export function landmarkDecodePartsWorkgroupBytes(o: { readonly headDim: number; readonly blockLength: number }): number {
  return 4 * (o.headDim + o.blockLength + 1 + LANDMARK_DECODE_THREADS);
}

/**
 * Generates the WGSL of the decode-parts kernel. Bindings: 0 params, 1 q `[querySlots][querySeq][D]`,
 * 2 k, 3 v (slot s's key t at row `s · keyStride + t`), 4 / 5 the landmark selection's bounds and
 * indices (per row: retrieved blocks, then the own block), 6 the partial records
 * `[rows][parts][2 + Dv]`.
 */
export const landmarkDecodePartsWgsl = memoKernel((o: { readonly headDim: number; readonly valueDim: number; readonly blockLength: number }): string => {
  const NT = LANDMARK_DECODE_THREADS;
  const span = o.blockLength + 1;
  return /* wgsl */ `
${paramsStructWgsl(LANDMARK_DECODE_PARTS_PARAMS)}

const NT: u32 = ${NT}u;
const D: u32 = ${o.headDim}u;
const DV: u32 = ${o.valueDim}u;
const L: u32 = ${o.blockLength}u;
const SPAN: u32 = ${span}u;
const REC: u32 = ${decodePartialRecord(o.valueDim)}u;
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> bounds: array<u32>;
@group(0) @binding(5) var<storage, read> indices: array<u32>;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;

var<workgroup> qs: array<f32, ${o.headDim}>;
// Scores, then probabilities e^{s − m}, of the block's keys (index L: a retrieved block's landmark).
var<workgroup> prob: array<f32, ${span}>;
var<workgroup> red: array<f32, ${NT}>;
// The row's entry count and the entry's block, read by one thread (uniform control flow after).
var<workgroup> wgCount: u32;
var<workgroup> wgBlock: u32;

${(['max', 'sum'] as const)
  .map(
    (op) => `// Workgroup-wide ${op} of each thread's value; every thread gets the result.
fn reduce${op === 'max' ? 'Max' : 'Sum'}(value: f32, lid: u32) -> f32 {
  red[lid] = value;
  workgroupBarrier();
${workgroupReduceWgsl('red', op, '  ')}
  let result = red[0];
  workgroupBarrier();
  return result;
}`,
  )
  .join('\n\n')}

@compute @workgroup_size(${NT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let item = wid.x + wid.y * P.tilesX;
  if (item >= P.rows * P.parts) { return; }
  let row = item / P.parts;
  let e = item % P.parts;
  let rec = item * REC;
  if (lid == 0u) {
    let first = bounds[2u * row];
    wgCount = bounds[2u * row + 1u] - first;
    wgBlock = 0u;
    if (e < wgCount) { wgBlock = indices[first + e]; }
  }
  let count = workgroupUniformLoad(&wgCount);
  let block = workgroupUniformLoad(&wgBlock);
  if (e >= count) {
    for (var c = lid; c < DV; c += NT) { partial[rec + 2u + c] = 0.0; }
    if (lid == 0u) { partial[rec] = NEG; partial[rec + 1u] = 0.0; }
    return;
  }
  // The row's last entry is its own block: tokens up to the query, no landmark (len = min(r + 1, ℓ)).
  let own = e + 1u == count;
  let p = P.queryOffset + row % P.querySeq;
  let len = select(L, min(p - block * SPAN + 1u, L), own);
  let scored = select(SPAN, len, own);
  let keyRow0 = ((row / P.querySeq) / P.groupSize) * P.keyStride + block * SPAN;
  for (var c = lid; c < D; c += NT) { qs[c] = q[row * D + c]; }
  workgroupBarrier();
  var top = NEG;
  for (var u = lid; u < scored; u += NT) {
    var s = 0.0;
    let at = (keyRow0 + u) * D;
    for (var c = 0u; c < D; c++) { s = fma(qs[c], k[at + c], s); }
    s = P.scale * s;
    prob[u] = s;
    if (u < len) { top = max(top, s); }
  }
  let m = reduceMax(top, lid);
  var part = 0.0;
  for (var u = lid; u < len; u += NT) {
    let w = exp(prob[u] - m);
    prob[u] = w;
    part += w;
  }
  let l = reduceSum(part, lid);
  // A retrieved block: the record (gate, 1, o_b normalised); the own block: (m, l, a unnormalised).
  let inv = select(1.0 / l, 1.0, own);
  for (var c = lid; c < DV; c += NT) {
    var a = 0.0;
    for (var u = 0u; u < len; u++) { a = fma(prob[u], v[(keyRow0 + u) * DV + c], a); }
    partial[rec + 2u + c] = a * inv;
  }
  if (lid == 0u) {
    partial[rec] = select(prob[L], m, own);
    partial[rec + 1u] = select(1.0, l, own);
  }
}
`;
});
