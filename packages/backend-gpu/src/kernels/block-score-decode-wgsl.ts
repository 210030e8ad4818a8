/**
 * Block importance for decode-shaped calls (a few queries per KV slot), the same scores as
 * `block-score-wgsl.ts` computes for a selection row (see there for the equations) but spread over
 * the GPU instead of one workgroup per row walking every block:
 *
 * - {@link blockLogitsWgsl}: one thread per (KV slot, row, query of the row's tile, block) writes
 *   z = scale · q · mean_j ('mean'), or scale · ([q⁺ | q⁻] · [max_j | min_j]) ('quest'), for the
 *   blocks the query sees (block start ≤ its position; −∞ otherwise);
 * - {@link blockMassWgsl}: one workgroup per (KV slot, row) reduces each query's logits to its
 *   log-sum-exp and sums e^{z − lse} over the row's queries into the row's block scores.
 *
 * At 64k keys and 32 KV heads the tiled kernel ran 32 workgroups of 64 rows (one of them live)
 * over 1 024 blocks each; these run 32 768 threads, then 32 workgroups over 1 024 floats each.
 * Rounding differs from the tiled kernel's (dot-product order, a two-pass lse): the top-k agrees
 * with the CPU's up to ties within float32 rounding, as the tiled kernel's does.
 */
import { memoKernel } from './memo-kernel.js';
import { SELECTION_ROW_WGSL } from './selection-row-wgsl.js';
import type { BlockScoring } from './block-score-wgsl.js';

/** Uniform parameter block of both decode scoring kernels. */
export const BLOCK_DECODE_PARAMS = [
  'querySeq', 'queryOffset', 'groupSize', 'slots',
  'selRows', 'queryBlockSize', 'blockSize', 'blocks',
  'tileRows', 'tilesX', 'scale', 'pad0',
] as const;

/** Threads per workgroup of both kernels. */
export const BLOCK_DECODE_THREADS = 256;

const PARAMS_STRUCT = `
struct Params {
  querySeq: u32, queryOffset: u32, groupSize: u32, slots: u32,
  selRows: u32, queryBlockSize: u32, blockSize: u32, blocks: u32,
  tileRows: u32, tilesX: u32, scale: f32, pad0: u32,
}`;

/** The logits kernel: `tileRows` = the most query rows a selection row's tile has (group size × queries per row). */
export const blockLogitsWgsl = memoKernel(function blockLogitsWgsl(o: { headDim: number; scoring: BlockScoring }): string {
  const quest = o.scoring === 'quest';
  const vec = o.headDim % 4 === 0;
  const width = vec ? o.headDim / 4 : o.headDim;
  const type = vec ? 'vec4<f32>' : 'f32';
  const zero = vec ? 'vec4<f32>(0.0)' : '0.0';
  const dotOf = (a: string, b: string) => (vec ? `dot(${a}, ${b})` : `${a} * ${b}`);
  return /* wgsl */ `${PARAMS_STRUCT}

const W: u32 = ${width}u;
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<${type}>;
@group(0) @binding(2) var<storage, read> pooledA: array<${type}>;
@group(0) @binding(3) var<storage, read> pooledB: array<${type}>;
@group(0) @binding(4) var<storage, read_write> logits: array<f32>;

@compute @workgroup_size(${BLOCK_DECODE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let id = (wid.x + wid.y * P.tilesX) * ${BLOCK_DECODE_THREADS}u + lid;
  if (id >= P.slots * P.selRows * P.tileRows * P.blocks) { return; }
  let j = id % P.blocks;
  let t = (id / P.blocks) % P.tileRows;
  let r = (id / (P.blocks * P.tileRows)) % P.selRows;
  let slot = id / (P.blocks * P.tileRows * P.selRows);
  let rowQueries = min(P.queryBlockSize, P.querySeq - r * P.queryBlockSize);
  if (t >= P.groupSize * rowQueries) { return; }
  let i = r * P.queryBlockSize + t % rowQueries;
  let querySlot = slot * P.groupSize + t / rowQueries;
  var z = NEG;
  if (j * P.blockSize <= P.queryOffset + i) {
    let qBase = (querySlot * P.querySeq + i) * W;
    let kBase = (slot * P.blocks + j) * W;
    var acc = ${zero};
    for (var e = 0u; e < W; e++) {
      let x = q[qBase + e];
${quest ? `      acc += max(x, ${zero}) * pooledA[kBase + e] + min(x, ${zero}) * pooledB[kBase + e];` : '      acc += x * pooledA[kBase + e];'}
    }
    z = P.scale * ${vec ? dotOf('acc', 'vec4<f32>(1.0)') : 'acc'};
  }
  logits[id] = z;
}
`;
});

/** The reduction kernel: per (KV slot, row), each query's lse over its logits, then the row's block scores. */
export const blockMassWgsl = memoKernel(function blockMassWgsl(): string {
  return /* wgsl */ `${PARAMS_STRUCT}

const NT: u32 = ${BLOCK_DECODE_THREADS}u;
const NEG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> scores: array<f32>;

var<workgroup> red: array<f32, NT>;

fn reduceMax(x: f32, lid: u32) -> f32 {
  red[lid] = x;
  workgroupBarrier();
  for (var s = NT / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let out = red[0];
  workgroupBarrier();
  return out;
}

fn reduceSum(x: f32, lid: u32) -> f32 {
  red[lid] = x;
  workgroupBarrier();
  for (var s = NT / 2u; s > 0u; s = s / 2u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let out = red[0];
  workgroupBarrier();
  return out;
}

@compute @workgroup_size(NT)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.selRows) { return; }${SELECTION_ROW_WGSL}
  let tileRows = P.groupSize * rowQueries;
  let scoreBase = (slot * P.selRows + r) * P.blocks;
  for (var t = 0u; t < tileRows; t++) {
    let base = ((slot * P.selRows + r) * P.tileRows + t) * P.blocks;
    var m = NEG;
    for (var j = lid; j < visible; j += NT) { m = max(m, logits[base + j]); }
    m = reduceMax(m, lid);
    var l = 0.0;
    for (var j = lid; j < visible; j += NT) {
      let z = logits[base + j];
      if (z > NEG) { l += exp(z - m); }
    }
    l = reduceSum(l, lid);
    let lse = m + log(l);
    for (var j = lid; j < visible; j += NT) {
      let z = logits[base + j];
      let e = select(0.0, exp(z - lse), z > NEG);
      if (t == 0u) { scores[scoreBase + j] = e; } else { scores[scoreBase + j] += e; }
    }
  }
}
`;
});
