/**
 * Seeded standard-normal fill in WGSL, for benchmark inputs too large to build on the host:
 *
 *   u1, u2 = PCG hash of (seed, i) mapped to (0, 1];   x_i = sqrt(−2 ln u1) · cos(2π u2)
 *
 * (Box–Muller on a counter-based hash, so every element is independent of launch order.)
 */
import { memoKernel } from './memo-kernel.js';

/** Uniform parameter block of the fill kernel. */
export const FILL_PARAMS = ['count', 'seed', 'tilesX', 'pad0'] as const;

/** Threads per workgroup of the fill kernel. */
export const FILL_THREADS = 256;

/** Generates the WGSL of the fill kernel. */
export const fillNormalWgsl = memoKernel(function fillNormalWgsl(): string {
  return /* wgsl */ `
struct Params { count: u32, seed: u32, tilesX: u32, pad0: u32 }

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> data: array<f32>;

fn pcg(x: u32) -> u32 {
  let state = x * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

@compute @workgroup_size(${FILL_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.x + wid.y * P.tilesX) * ${FILL_THREADS}u + lid;
  if (i >= P.count) { return; }
  let h1 = pcg(i ^ pcg(P.seed));
  let h2 = pcg(h1 ^ 0x9e3779b9u);
  let u1 = (f32(h1 >> 8u) + 1.0) / 16777216.0;
  let u2 = f32(h2 >> 8u) / 16777216.0;
  data[i] = sqrt(-2.0 * log(u1)) * cos(6.283185307 * u2);
}
`;
});
