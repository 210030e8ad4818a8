/**
 * Kernel: copies `count` 32-bit words `dst[dstOffset + x] = src[srcOffset + x]` on the GPU.
 *
 * The resident call's q / k / v buffers carry no COPY_SRC usage (backend-gpu allocates them as
 * STORAGE | COPY_DST), so `copyBufferToBuffer` cannot slice them: the indexer's `runResident`
 * uses this kernel to move a run of KV slots (a contiguous range of every per-slot tensor) into
 * smaller buffers and the output back. One thread per word over a 2-D grid of workgroups.
 */
import { memoKernel } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of the copy kernel (u32 fields, in words). */
export const COPY_RANGE_PARAMS = ['count', 'srcOffset', 'dstOffset', 'tilesX'] as const;

/** Threads per workgroup of the copy kernel. */
export const COPY_RANGE_THREADS = 256;

/** Generates the copy kernel. */
export const copyRangeWgsl = memoKernel(function copyRangeWgsl(): string {
  return /* wgsl */ `
struct Params { count: u32, srcOffset: u32, dstOffset: u32, tilesX: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

@compute @workgroup_size(${COPY_RANGE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let x = (wid.x + wid.y * P.tilesX) * ${COPY_RANGE_THREADS}u + lid;
  if (x < P.count) { dst[P.dstOffset + x] = src[P.srcOffset + x]; }
}
`;
});
