/**
 * Kernel: MoBA's gating and top-k routing on the GPU (arXiv:2502.13189; the WGSL twin of `moba.ts`).
 *
 *   gate      s_t^h[j] = q_t^h · mean(K[j·B, (j+1)·B))     for past blocks j < IC = floor(t / B)
 *   forced    s_t^h[IC] = +∞  (BIG here: the current block, causally masked by the executor)
 *   routing   I_t^h = top-k_{j ≤ IC} s_t^h[j],  k' = min(k, IC + 1), ties toward the later block
 *
 * One workgroup per selection row (query head h of a KV slot, query t): its threads score the
 * row's past blocks into workgroup memory, then run k' arg-max passes (see `top-k-passes-wgsl.ts`)
 * and thread 0 writes the sorted picks as one CSR row (`bounds` = start, end; `indices`) at a
 * fixed stride, the layout the backend's sparse executor reads. No score matrix leaves the
 * workgroup: the only scratch is the pooled block means (S·D/B floats per KV slot).
 */
import { SORT_PICKS_WGSL, TOP_K_PASSES_WGSL } from './top-k-passes-wgsl.js';

/** Uniform parameter block of the MoBA routing kernel (u32 fields). */
export const MOBA_SELECT_PARAMS = ['querySeq', 'queryOffset', 'groupSize', 'slots', 'tilesX', 'blockSize', 'pooled', 'topK', 'stride', 'pad0', 'pad1', 'pad2'] as const;

/** Threads per workgroup of the MoBA routing kernel. */
export const MOBA_SELECT_THREADS = 64;

/**
 * Generates the routing kernel. `headDim` is D; `maxBlocks` bounds the candidate blocks of a row
 * (ceil(keySeq / B)), `maxPicks` the picks per row (min(topK, maxBlocks), the CSR stride).
 */
export function mobaSelectWgsl(o: { headDim: number; maxBlocks: number; maxPicks: number }): string {
  return /* wgsl */ `
const NT: u32 = ${MOBA_SELECT_THREADS}u;
const D: u32 = ${o.headDim}u;
const BIG: f32 = 3.0e38;

struct Params {
  querySeq: u32, queryOffset: u32, groupSize: u32, slots: u32,
  tilesX: u32, blockSize: u32, pooled: u32, topK: u32,
  stride: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> means: array<f32>;
@group(0) @binding(3) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(4) var<storage, read_write> indices: array<u32>;

var<workgroup> cand: array<f32, ${Math.max(1, o.maxBlocks)}>;
var<workgroup> bestKey: array<f32, ${MOBA_SELECT_THREADS}>;
var<workgroup> bestIndex: array<u32, ${MOBA_SELECT_THREADS}>;
var<workgroup> picks: array<u32, ${Math.max(1, o.maxPicks)}>;

@compute @workgroup_size(${MOBA_SELECT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x + wid.y * P.tilesX;
  if (row >= P.slots * P.groupSize * P.querySeq) { return; }
  // Rows are (query slot, query) like core's Selection with headScope 'query'.
  let querySlot = row / P.querySeq;
  let kvSlot = querySlot / P.groupSize;
  let t = P.queryOffset + row % P.querySeq;
  let current = t / P.blockSize;
  let count = current + 1u;
  let qBase = row * D;
  for (var j = lid; j < count; j += NT) {
    if (j == current) {
      cand[j] = BIG;
    } else {
      let m = (kvSlot * P.pooled + j) * D;
      var s = 0.0;
      for (var c = 0u; c < D; c++) { s += q[qBase + c] * means[m + c]; }
      cand[j] = s;
    }
  }
  workgroupBarrier();
  let n = min(P.topK, count);
${TOP_K_PASSES_WGSL}
  if (lid == 0u) {
${SORT_PICKS_WGSL}
    let start = row * P.stride;
    for (var a = 0u; a < n; a++) { indices[start + a] = picks[a]; }
    bounds[2u * row] = start;
    bounds[2u * row + 1u] = start + n;
  }
}
`;
}
