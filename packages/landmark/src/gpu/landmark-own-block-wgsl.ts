/**
 * The own-block part of Landmark Attention's grouped softmax (arXiv:2305.16300 §3.2), one
 * workgroup per (query head, own block): the block's queries p = c·(ℓ+1) + r attend causally to
 * its ordinary tokens (the landmark at c·(ℓ+1) + ℓ is never attended by its own block):
 *
 *   s_ru = scale · q_p · k_{c(ℓ+1)+u},  u < len_r = min(r + 1, ℓ)
 *   m_r = max_u s_ru,  l_r = Σ_u e^{s_ru − m_r},  o_r = Σ_u e^{s_ru − m_r} v_u / l_r,  lse_r = m_r + log l_r
 *
 * the start of `landmark-block-merge-wgsl.ts`'s fold (the grouped softmax kernel's `ownOnly` part).
 * Thread r scores query r's keys (a key row is read by every thread of the workgroup at once: one
 * broadcast load instead of one row per thread) into workgroup memory; then each thread owns
 * output channels and sums the probabilities times the block's value rows (coalesced across the
 * threads) for every query of the block. The block's keys and values are read once per block of
 * queries instead of once per query. Needs ℓ + 1 ≤ 64 and `4·(ℓ+1)·(ℓ+2)` bytes of workgroup
 * memory (10.4 KiB at ℓ = 50); larger blocks use the per-row kernel.
 */
import { memoKernel } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the own-block kernel (`keyStride`: rows between KV slots in k and v, key t of slot s at row `s · keyStride + t`). */
export const LANDMARK_OWN_BLOCK_PARAMS = [
  'querySeq', 'queryOffset', 'querySlots', 'tilesX',
  'groupSize', 'keySeq', 'firstBlock', 'ownBlocks',
  'scale', 'pad0', 'pad1', 'keyStride',
] as const;

/** Threads per workgroup of the own-block kernel (one query of the block each in the scoring phase). */
export const LANDMARK_OWN_BLOCK_THREADS = 64;

/** Workgroup memory of the own-block kernel, or Infinity when the block has more queries than threads. */
export function landmarkOwnBlockWorkgroupBytes(blockLength: number): number {
  const span = blockLength + 1;
  return span > LANDMARK_OWN_BLOCK_THREADS ? Infinity : 4 * span * (blockLength + 2);
}

/** Generates the WGSL of the own-block kernel. */
export const landmarkOwnBlockWgsl = memoKernel((o: { readonly headDim: number; readonly valueDim: number; readonly blockLength: number }): string => {
  const NT = LANDMARK_OWN_BLOCK_THREADS;
  const span = o.blockLength + 1;
  return /* wgsl */ `
struct Params {
  querySeq: u32, queryOffset: u32, querySlots: u32, tilesX: u32,
  groupSize: u32, keySeq: u32, firstBlock: u32, ownBlocks: u32,
  scale: f32, pad0: u32, pad1: u32, keyStride: u32,
}

const NT: u32 = ${NT}u;
const D: u32 = ${o.headDim}u;
const DV: u32 = ${o.valueDim}u;
const L: u32 = ${o.blockLength}u;
const SPAN: u32 = ${span}u;
const NEG: f32 = -3.4e38;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

// Probabilities e^{s − m} of query r (row r, L columns) and its normaliser.
var<workgroup> prob: array<f32, ${span * o.blockLength}>;
var<workgroup> norm: array<f32, ${span}>;

@compute @workgroup_size(${NT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.querySlots * P.ownBlocks) { return; }
  let querySlot = linear / P.ownBlocks;
  let own = (P.firstBlock + linear % P.ownBlocks) * SPAN;
  let kvSlot = querySlot / P.groupSize;
  let keyRow0 = kvSlot * P.keyStride + own;
  // Scoring: thread r is the query at own + r (if it is one of the call's queries).
  let p = own + lid;
  if (lid < SPAN && p >= P.queryOffset && p < P.keySeq) {
    let row = querySlot * P.querySeq + (p - P.queryOffset);
    let len = min(lid + 1u, L);
    var m = NEG;
    for (var u = 0u; u < len; u++) {
      var s = 0.0;
      for (var c = 0u; c < D; c++) { s += q[row * D + c] * k[(keyRow0 + u) * D + c]; }
      s = P.scale * s;
      prob[lid * L + u] = s;
      m = max(m, s);
    }
    var l = 0.0;
    for (var u = 0u; u < len; u++) {
      let e = exp(prob[lid * L + u] - m);
      prob[lid * L + u] = e;
      l += e;
    }
    norm[lid] = l;
    lse[row] = m + log(l);
  }
  workgroupBarrier();
  // Values: each thread owns channels lid, lid + NT, … for every query of the block.
  for (var r = 0u; r < SPAN; r++) {
    let pr = own + r;
    if (pr < P.queryOffset || pr >= P.keySeq) { continue; }
    let row = querySlot * P.querySeq + (pr - P.queryOffset);
    let len = min(r + 1u, L);
    let l = norm[r];
    for (var c = lid; c < DV; c += NT) {
      var a = 0.0;
      for (var u = 0u; u < len; u++) { a += prob[r * L + u] * v[(keyRow0 + u) * DV + c]; }
      out[row * DV + c] = a / l;
    }
  }
}
`;
});
