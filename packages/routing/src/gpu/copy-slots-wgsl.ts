/**
 * A float copy between storage buffers in WGSL, `dst[dstOffset + i] = src[srcOffset + i]` for
 * i < count, in elements of `lanes` floats (vec4 when lengths and offsets are multiples of 4):
 * moves a group of KV slots' q, k, v out of (and out / lse back into) a resident chunk, whose
 * buffers are storage-only (no COPY_SRC / COPY_DST usage for `copyBufferToBuffer`), and whose
 * bindings always start at the buffer's start.
 */

/** Uniform parameter block of the copy kernel (counts and offsets in elements). */
export const COPY_PARAMS = ['count', 'srcOffset', 'dstOffset', 'tilesX'] as const;

/** Threads per workgroup of the copy kernel. */
export const COPY_THREADS = 256;

/** Generates the WGSL of the copy kernel for elements of 1 or 4 floats. */
export function copyFloatsWgsl(lanes: 1 | 4 = 1): string {
  const element = lanes === 4 ? 'vec4<f32>' : 'f32';
  return /* wgsl */ `
struct Params { count: u32, srcOffset: u32, dstOffset: u32, tilesX: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> src: array<${element}>;
@group(0) @binding(2) var<storage, read_write> dst: array<${element}>;

@compute @workgroup_size(${COPY_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * P.tilesX) * ${COPY_THREADS}u + lid;
  if (i >= P.count) { return; }
  dst[P.dstOffset + i] = src[P.srcOffset + i];
}
`;
}
