/**
 * Kernel: mean pooling of key (or value) windows on the GPU, the WGSL twin of `BlockMeans.extend`.
 *
 *   k̃_i = (1/l) Σ_{j = i·d}^{i·d + l − 1} k_j      for every complete window i < floor((S − l) / d) + 1
 *   bounds_i = [max_j k_j | min_j k_j]              (per channel, only with `bounds`: NSA's 'quest' score)
 *
 * Window length l and stride d (d ≤ l) are NSA's compression geometry; MoBA pools its blocks
 * with l = d = block size. One thread per (KV slot, window, channel), so the reads of a window
 * row are coalesced across the workgroup. The CPU sums in float64 and rounds once; this kernel
 * sums in float32 (a few ulps apart, which is why selections are compared up to score ties).
 * Only complete windows are pooled, exactly as on the CPU: the partial last block is never a
 * candidate of either method (MoBA forces the current block, NSA scores complete windows only).
 *
 * `first` pools only windows `first … first + windows − 1` (a decode step's newly complete
 * windows, appended to a store kept on the device: a complete window never changes, so the
 * earlier ones are not recomputed). Each slot's output holds `first + windows` windows, so
 * window i of slot s is at `(s · (first + windows) + i) · dim` (`first = 0`: the whole call).
 *
 * `src` is a resident chunk's keys or values: key t of the chunk's KV slot s is row
 * `s · keyStride + t` (backend-gpu's `chunkKeyStride`: a KV cache's capacity between slots,
 * `keySeq` for contiguous keys). Only complete windows are read, so no bound on the keys is needed.
 */
import { memoKernel } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the pooling kernel (4-byte u32 fields). */
export const WINDOW_POOL_PARAMS = ['keyStride', 'length', 'stride', 'windows', 'slots', 'tilesX', 'dim', 'first'] as const;

/** Threads per workgroup of the pooling kernel. */
export const WINDOW_POOL_THREADS = 256;

/** Generates the WGSL of the pooling kernel; `bounds` also writes `[max | min]` per window (2·dim floats). */
export const windowPoolWgsl = memoKernel(function windowPoolWgsl(options: { bounds: boolean }): string {
  return /* wgsl */ `
struct Params { keyStride: u32, length: u32, stride: u32, windows: u32, slots: u32, tilesX: u32, dim: u32, first: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> meanOut: array<f32>;
${options.bounds ? '@group(0) @binding(3) var<storage, read_write> boundsOut: array<f32>;' : ''}

@compute @workgroup_size(${WINDOW_POOL_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * P.tilesX) * ${WINDOW_POOL_THREADS}u + lid;
  if (id >= P.slots * P.windows * P.dim) { return; }
  let c = id % P.dim;
  let w = P.first + (id / P.dim) % P.windows;
  let slot = id / (P.dim * P.windows);
  let stored = slot * (P.first + P.windows) + w;
  let start = w * P.stride;
  var sum = 0.0;
  var hi = -3.0e38;
  var lo = 3.0e38;
  for (var t = start; t < start + P.length; t++) {
    let x = src[(slot * P.keyStride + t) * P.dim + c];
    sum += x;
    hi = max(hi, x);
    lo = min(lo, x);
  }
  meanOut[stored * P.dim + c] = sum * (1.0 / f32(P.length));
${options.bounds ? `  let b = stored * 2u * P.dim;
  boundsOut[b + c] = hi;
  boundsOut[b + P.dim + c] = lo;` : '  _ = hi + lo;'}
}
`;
});
