/**
 * Kernel: copies a chunk's merged log-sum-exp rows into DELTA's call-wide lse buffer, where the
 * page-score kernel reads every query head of a sequence across chunks:
 *
 *   lseAll[base + x] = lse[x]      for x < count   (base: the chunk's first query row in the call)
 *
 * A Δ-layer's dense decode is the backend's split-K kernels with the score dump
 * (`decodePartialWgsl({ dumpScores: true })` writes the logits into the call-wide buffer); the
 * backend's merge writes each row's lse into the chunk's own `lse` buffer, and this one copy per
 * chunk puts it beside the logits (a storage binding cannot start at an arbitrary row: offsets are
 * multiples of 256 bytes). 64 threads per workgroup, one row per thread.
 */

/** Uniform parameter block of the lse copy (4 × 4 bytes). */
export const LSE_GATHER_PARAMS = ['count', 'base', 'tilesX', 'pad0'] as const;

/** Threads per workgroup (and rows per workgroup) of the lse copy. */
export const LSE_GATHER_THREADS = 64;

/** Generates the WGSL of the lse copy. Bindings: 0 params, 1 the chunk's lse, 2 the call-wide lse. */
export function lseGatherWgsl(): string {
  return /* wgsl */ `
struct Params { count: u32, base: u32, tilesX: u32, pad0: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> lse: array<f32>;
@group(0) @binding(2) var<storage, read_write> lseAll: array<f32>;

@compute @workgroup_size(${LSE_GATHER_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let x = (wid.x + wid.y * P.tilesX) * ${LSE_GATHER_THREADS}u + lid;
  if (x < P.count) { lseAll[P.base + x] = lse[x]; }
}
`;
}
