/**
 * The paper landmark's grouped softmax as block partials merged by landmark gates
 * (arXiv:2305.16300 §3.2; spec landmark.md §3.2), the kernels around backend-gpu's sparse
 * executor. The grouped softmax of query p (own block c, retrieved blocks R)
 *
 *   o = (e^{m_c} a_c + Σ_{b ∈ R} e^{w_b} o_b) / (e^{m_c} l_c + Σ_{b ∈ R} e^{w_b}),   w_b = scale · q·k_{L_b}
 *
 * needs per retrieved block b only o_b = softmax_{j ∈ b \ L_b}(s) · v — an ordinary attention over
 * the block's ℓ ordinary tokens. So:
 *
 * - {@link landmarkFreeCopyWgsl}: K' / V' = K / V without the landmark tokens (token b·(ℓ+1) + u of
 *   a complete block b, u < ℓ, goes to b·ℓ + u), so block b of K' with block size ℓ is exactly
 *   b \ L_b, and backend-gpu's exact sparse executor (key-block-major: each block read once per
 *   64 queries that chose it) computes o_b with its lse for a one-block-per-row selection;
 * - {@link landmarkEntryRowsWgsl}: that selection for entry x of every row (the x-th retrieved
 *   block, or an empty row when the row has fewer);
 * - {@link landmarkGateFoldWgsl}: folds (o_b, w_b) into the running result, starting from the own
 *   part (o = a_c / l_c, lse = m_c + log l_c, the grouped softmax kernel with no retrieved block):
 *
 *     lse' = log(e^{lse} + e^{w_b}),   o' = o · e^{lse − lse'} + o_b · e^{w_b − lse'}
 *
 *   so after the last entry o and lse are the grouped softmax's output and log-denominator.
 */
import { memoKernel } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the landmark-free copy (`keyStride`: rows between the source's KV slots, backend-gpu's `chunkKeyStride`). */
export const LANDMARK_FREE_COPY_PARAMS = [
  'slots', 'keySeq', 'freeSeq', 'blocks',
  'blockLength', 'span', 'dim', 'tilesX',
  'keyStride', 'pad0', 'pad1', 'pad2',
] as const;

/** Uniform parameter block of the entry-row and fold kernels (`keyStride`: rows between the KV slots of the fold's k). */
export const LANDMARK_ENTRY_PARAMS = [
  'rows', 'entry', 'tilesX', 'keySeq',
  'querySeq', 'groupSize', 'span', 'blockLength',
  'scale', 'pad0', 'pad1', 'keyStride',
] as const;

/** Threads per workgroup of the three kernels (one element, or one selection row, each). */
export const LANDMARK_MERGE_THREADS = 64;

/**
 * Copy of one tensor without its landmark tokens. Bindings: 0 params, 1 source (a chunk's k or v:
 * token t of slot s at row `s · keyStride + t`), 2 destination `[slots][freeSeq][dim]` (compact; only
 * the first `blocks · blockLength` rows are written; the rest stay zero and are never selected).
 */
export const landmarkFreeCopyWgsl = memoKernel((): string => {
  return /* wgsl */ `
struct Params { slots: u32, keySeq: u32, freeSeq: u32, blocks: u32, blockLength: u32, span: u32, dim: u32, tilesX: u32, keyStride: u32, pad0: u32, pad1: u32, pad2: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

@compute @workgroup_size(${LANDMARK_MERGE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * P.tilesX) * ${LANDMARK_MERGE_THREADS}u + lid;
  let perSlot = P.blocks * P.blockLength * P.dim;
  if (id >= P.slots * perSlot) { return; }
  let slot = id / perSlot;
  let within = id % perSlot;
  let t = within / P.dim;
  let c = within % P.dim;
  let b = t / P.blockLength;
  let u = t % P.blockLength;
  dst[(slot * P.freeSeq + t) * P.dim + c] = src[(slot * P.keyStride + b * P.span + u) * P.dim + c];
}
`;
});

/** Uniform parameter block of {@link landmarkSelectedCopyWgsl} (`keyStride`: rows between the source's KV slots). */
export const LANDMARK_SELECTED_COPY_PARAMS = [
  'slots', 'keySeq', 'freeSeq', 'blockLength',
  'span', 'dim', 'tilesX', 'rows',
  'entries', 'querySeq', 'groupSize', 'keyStride',
] as const;

/**
 * {@link landmarkFreeCopyWgsl} for the blocks a few rows retrieve (a decode step's): one workgroup
 * per (selection row, retrieved entry) copies that block's ℓ keys into its landmark-free place, so a
 * step moves its rows' blocks instead of the whole cache (2 GiB of K and V at 64k, 32 heads). Rows
 * of a GQA group that retrieve the same block write the same values. Bindings: 0 params, 1 source,
 * 2 destination (as the full copy), 3 / 4 the landmark selection's bounds and indices (retrieved
 * blocks, then the own block, which is not copied: its keys are attended in place).
 */
export const landmarkSelectedCopyWgsl = memoKernel((): string => {
  return /* wgsl */ `
struct Params { slots: u32, keySeq: u32, freeSeq: u32, blockLength: u32, span: u32, dim: u32, tilesX: u32, rows: u32, entries: u32, querySeq: u32, groupSize: u32, keyStride: u32, }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
@group(0) @binding(3) var<storage, read> bounds: array<u32>;
@group(0) @binding(4) var<storage, read> indices: array<u32>;

@compute @workgroup_size(${LANDMARK_MERGE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let item = wid.x + wid.y * P.tilesX;
  if (item >= P.rows * P.entries) { return; }
  let row = item / P.entries;
  let e = item % P.entries;
  let start = bounds[2u * row];
  // The row's last entry is its own block.
  if (start + e + 1u >= bounds[2u * row + 1u]) { return; }
  let b = indices[start + e];
  let kvSlot = (row / P.querySeq) / P.groupSize;
  for (var x = lid; x < P.blockLength * P.dim; x += ${LANDMARK_MERGE_THREADS}u) {
    let t = x / P.dim;
    let c = x % P.dim;
    dst[(kvSlot * P.freeSeq + b * P.blockLength + t) * P.dim + c] = src[(kvSlot * P.keyStride + b * P.span + t) * P.dim + c];
  }
}
`;
});

/**
 * Entry `entry` of every landmark selection row as a one-block row (same row order, stride 1).
 * Bindings: 0 params, 1 / 2 the landmark selection's bounds and indices (retrieved blocks, then
 * the own block), 3 / 4 the target's bounds and indices.
 */
export const landmarkEntryRowsWgsl = memoKernel((): string => {
  return /* wgsl */ `
${paramsStruct()}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> rowBounds: array<u32>;
@group(0) @binding(2) var<storage, read> rowIndices: array<u32>;
@group(0) @binding(3) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(4) var<storage, read_write> indices: array<u32>;

@compute @workgroup_size(${LANDMARK_MERGE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * P.tilesX) * ${LANDMARK_MERGE_THREADS}u + lid;
  if (row >= P.rows) { return; }
  let first = rowBounds[2u * row];
  let retrieved = rowBounds[2u * row + 1u] - first - 1u;
  let live = P.entry < retrieved;
  indices[row] = select(0u, rowIndices[first + P.entry], live);
  bounds[2u * row] = row;
  bounds[2u * row + 1u] = row + select(0u, 1u, live);
}
`;
});

/** Selection rows per workgroup of the fold (their gates first, then their channels, coalesced). */
export const LANDMARK_FOLD_ROWS = 8;

/**
 * Folds entry `entry`'s block partial into the running output and lse (see the file comment).
 * Bindings: 0 params, 1 q `[querySlots][querySeq][D]`, 2 k (the chunk's original keys, slot s's key
 * t at row `s · keyStride + t`: the gate is the landmark key's score), 3 / 4 the landmark selection's bounds and indices,
 * 5 the block partial's (normalised) out, 6 / 7 the running out and lse. A workgroup folds
 * {@link LANDMARK_FOLD_ROWS} rows: one thread per row computes its gate and new lse, then all
 * threads rescale the rows' channels (consecutive threads, consecutive channels). The partial's
 * lse is not needed: the grouped softmax weighs a block by its gate, not by its mass.
 */
export const landmarkGateFoldWgsl = memoKernel((o: { readonly headDim: number; readonly valueDim: number }): string => {
  const R = LANDMARK_FOLD_ROWS;
  return /* wgsl */ `
${paramsStruct()}
const D: u32 = ${o.headDim}u;
const DV: u32 = ${o.valueDim}u;
const R: u32 = ${R}u;
const NT: u32 = ${LANDMARK_MERGE_THREADS}u;
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> rowBounds: array<u32>;
@group(0) @binding(4) var<storage, read> rowIndices: array<u32>;
@group(0) @binding(5) var<storage, read> partOut: array<f32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
@group(0) @binding(7) var<storage, read_write> lse: array<f32>;

// Per row of the workgroup: the old result's factor and the block partial's (0 when the row has no such entry).
var<workgroup> keepOld: array<f32, ${R}>;
var<workgroup> weight: array<f32, ${R}>;

@compute @workgroup_size(${LANDMARK_MERGE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row0 = (wid.x + wid.y * P.tilesX) * R;
  if (row0 >= P.rows) { return; }
  if (lid < R) {
    let row = row0 + lid;
    var keep = 1.0;
    var w = 0.0;
    if (row < P.rows) {
      let first = rowBounds[2u * row];
      if (P.entry < rowBounds[2u * row + 1u] - first - 1u) {
        let block = rowIndices[first + P.entry];
        let kvSlot = (row / P.querySeq) / P.groupSize;
        let kRow = (kvSlot * P.keyStride + block * P.span + P.blockLength) * D;
        var s = 0.0;
        for (var c = 0u; c < D; c++) { s += q[row * D + c] * k[kRow + c]; }
        let gate = P.scale * s;
        let old = lse[row];
        let top = max(old, gate);
        let next = top + log(exp(old - top) + exp(gate - top));
        keep = exp(old - next);
        w = exp(gate - next);
        lse[row] = next;
      }
    }
    keepOld[lid] = keep;
    weight[lid] = w;
  }
  workgroupBarrier();
  for (var r = 0u; r < R; r++) {
    let row = row0 + r;
    let w = weight[r];
    if (row >= P.rows || w == 0.0) { continue; }
    let keep = keepOld[r];
    for (var c = lid; c < DV; c += NT) {
      out[row * DV + c] = out[row * DV + c] * keep + partOut[row * DV + c] * w;
    }
  }
}
`;
});

function paramsStruct(): string {
  return `struct Params {
  rows: u32, entry: u32, tilesX: u32, keySeq: u32,
  querySeq: u32, groupSize: u32, span: u32, blockLength: u32,
  scale: f32, pad0: u32, pad1: u32, keyStride: u32,
}`;
}
