/**
 * Kernel: token-range selection rows for NSA's `gated` branches (spec §3.2, §3.5; the GPU side of
 * `nsa-gated-branches.ts`), written straight into a CSR target at a fixed stride:
 *
 *   window      (mode 0)  row t = [max(0, t − w + 1), t + 1)        (w = 0: empty)
 *   compressed  (mode 1)  row t = [0, NC(t)),  NC(t) = floor((t + 1 − l) / d) + 1 (0 before the first window)
 *
 * One thread per (row, entry); rows are (KV slot, query) like core's Selection with headScope 'kv'.
 */
import { memoKernel } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the range-rows kernel (u32 fields). */
export const RANGE_ROWS_PARAMS = ['rows', 'querySeq', 'queryOffset', 'stride', 'tilesX', 'mode', 'window', 'compressionBlock', 'compressionStride', 'windows', 'pad0', 'pad1'] as const;

/** Threads per workgroup of the range-rows kernel. */
export const RANGE_ROWS_THREADS = 256;

/** Generates the WGSL of the range-rows kernel. */
export const rangeRowsWgsl = memoKernel(function rangeRowsWgsl(): string {
  return /* wgsl */ `
struct Params {
  rows: u32, querySeq: u32, queryOffset: u32, stride: u32,
  tilesX: u32, mode: u32, window: u32, compressionBlock: u32,
  compressionStride: u32, windows: u32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(2) var<storage, read_write> indices: array<u32>;

@compute @workgroup_size(${RANGE_ROWS_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * P.tilesX) * ${RANGE_ROWS_THREADS}u + lid;
  if (id >= P.rows * P.stride) { return; }
  let row = id / P.stride;
  let a = id % P.stride;
  let t = P.queryOffset + row % P.querySeq;
  var start = 0u;
  var end = 0u;
  if (P.mode == 0u) {
    if (P.window > 0u) {
      end = t + 1u;
      if (t + 1u > P.window) { start = t + 1u - P.window; }
    }
  } else if (t + 1u >= P.compressionBlock) {
    end = min(P.windows, (t + 1u - P.compressionBlock) / P.compressionStride + 1u);
  }
  if (a < end - start) { indices[row * P.stride + a] = start + a; }
  if (a == 0u) {
    bounds[2u * row] = row * P.stride;
    bounds[2u * row + 1u] = row * P.stride + end - start;
  }
}
`;
});
