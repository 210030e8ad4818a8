/**
 * Block pooling in WGSL: per KV head and key block j (keys [j·bs, min((j+1)·bs, S))),
 *
 *   mean_j = (1/n_j) Σ_t k_t        max_j = max_t k_t        min_j = min_t k_t   (per channel)
 *
 * The mean is the training-free stand-in for NSA's compressed keys (arXiv:2502.11089 §3.3.1);
 * max/min are Quest's per-page key metadata (arXiv:2406.10774 §3). One thread per output channel,
 * so the reads of a block row are coalesced across the workgroup.
 *
 * `blocks` blocks are pooled from block `first` on (0 for a whole call; a decoder's step pools only
 * the blocks completed since its last one), into rows `[slot][first + blocks][dim]`. Key t of slot s is row `s · keyStride + t` (a KV cache's
 * capacity between slots, `keySeq` for contiguous keys).
 */
import { memoKernel } from './memo-kernel.js';

/** Uniform parameter block of the pooling kernel. */
export const POOL_PARAMS = ['keySeq', 'blockSize', 'blocks', 'slots', 'tilesX', 'dim', 'first', 'keyStride'] as const;

/** Threads per workgroup of the pooling kernel. */
export const POOL_THREADS = 256;

/** Generates the WGSL of the pooling kernel. */
export const blockPoolWgsl = memoKernel(function blockPoolWgsl(): string {
  return /* wgsl */ `
struct Params { keySeq: u32, blockSize: u32, blocks: u32, slots: u32, tilesX: u32, dim: u32, first: u32, keyStride: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read_write> meanOut: array<f32>;
@group(0) @binding(3) var<storage, read_write> maxOut: array<f32>;
@group(0) @binding(4) var<storage, read_write> minOut: array<f32>;

@compute @workgroup_size(${POOL_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * P.tilesX) * ${POOL_THREADS}u + lid;
  if (id >= P.slots * P.blocks * P.dim) { return; }
  let d = id % P.dim;
  let blockIndex = P.first + (id / P.dim) % P.blocks;
  let slot = id / (P.dim * P.blocks);
  let out = (slot * (P.first + P.blocks) + blockIndex) * P.dim + d;
  let start = blockIndex * P.blockSize;
  let end = min(start + P.blockSize, P.keySeq);
  var sum = 0.0;
  var hi = -3.0e38;
  var lo = 3.0e38;
  for (var t = start; t < end; t++) {
    let x = k[(slot * P.keyStride + t) * P.dim + d];
    sum += x;
    hi = max(hi, x);
    lo = min(lo, x);
  }
  meanOut[out] = sum / f32(end - start);
  maxOut[out] = hi;
  minOut[out] = lo;
}
`;
});
