/**
 * Key-norm scores in WGSL (kvpress KnormPress, `kv-scorers.ts` `key-norm`): keys of small L2 norm
 * are kept, so
 *
 *   s_j = −‖k_j‖₂ = −sqrt(Σ_c k_jc²)          j < scoredKeys
 *
 * one thread per (KV slot, key). Query-agnostic: no observer pass runs. Key j of the chunk's KV
 * slot s is row `s · keyStride + j` of k (a KV cache's capacity between slots).
 */

/** Uniform parameter block of the key-norm kernel. */
export const KEY_NORM_PARAMS = ['slots', 'keySeq', 'scored', 'tilesX', 'keyStride', 'pad0', 'pad1', 'pad2'] as const;

/** Threads per workgroup of the key-norm kernel. */
export const KEY_NORM_THREADS = 256;

/** Generates the WGSL of the key-norm kernel for `headDim`. */
export function keyNormScoresWgsl(o: { headDim: number }): string {
  return /* wgsl */ `
const D: u32 = ${o.headDim}u;
struct Params { slots: u32, keySeq: u32, scored: u32, tilesX: u32, keyStride: u32, pad0: u32, pad1: u32, pad2: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read_write> scores: array<f32>;

@compute @workgroup_size(${KEY_NORM_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let index = (wid.x + wid.y * P.tilesX) * ${KEY_NORM_THREADS}u + lid;
  if (index >= P.slots * P.scored) { return; }
  let slot = index / P.scored;
  let j = index % P.scored;
  let base = (slot * P.keyStride + j) * D;
  var s = 0.0;
  for (var c = 0u; c < D; c++) {
    let x = k[base + c];
    s += x * x;
  }
  scores[index] = -sqrt(s);
}
`;
}
