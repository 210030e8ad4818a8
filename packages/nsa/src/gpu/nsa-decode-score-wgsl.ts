/**
 * Kernels: NSA's block importance for a decode step (a few queries per KV slot), the same
 * quantities as the tiled scoring kernel (`nsa-score-tile-wgsl.ts`, which documents the formulas)
 * split over the windows instead of over the queries:
 *
 *   logits   s[g][i][w] = scale · q_i^g · k̃_w for w < NC(t_i), −3e38 past it
 *            one thread per window, the slot's G × T query rows staged in workgroup memory
 *   reduce   lse[g] = log Σ_w e^{s[g][i][w]} (max first, then the sum), then for every block j
 *            P[j] = Σ_{windows w overlapping j} Σ_{g in order} e^{s[g][i][w] − lse[g]}
 *            one workgroup per (KV slot, query)
 *
 * The tiled kernel gives each KV slot one workgroup whose 64-row tile holds one live row in a
 * decode step, and walks all windows twice through it: ~2 ms for 1 024 windows at 64k on the H100,
 * most of NSA's decode step. Here a step's windows are scored by slots × ⌈NC / 64⌉ workgroups at
 * once. Rounding differs from the tiled kernel's (another dot-product order, a two-pass lse
 * instead of an online one, a block's windows summed in one run), as the tiled kernel's differs
 * from the CPU's: selections agree up to ties of importance within float32 rounding.
 *
 * Output: `importance[(slot · blocks + j) · rangeRows + i]` for every block j with a visible
 * window (the tiled kernel's layout and rule: other blocks are not written, and the top-n kernel
 * never reads them). 'quest' scores use [q⁺ | q⁻] · [max | min] (width E = 2·D), as there.
 */
import { VISIBLE_WINDOWS_WGSL } from './nsa-score-tile-wgsl.js';
import { memoKernel } from '@sparse-attn/backend-gpu';

/** Uniform parameter block of both kernels (u32 fields except `scale`). */
export const NSA_DECODE_SCORE_PARAMS = [
  'querySeq', 'queryOffset', 'slots', 'tilesX',
  'windows', 'compressionBlock', 'compressionStride', 'selectionBlock',
  'blocks', 'windowTiles', 'rangeRows', 'scale',
] as const;

/** Threads of the logits kernel (one window each) and of the reduce kernel. */
export const NSA_DECODE_LOGIT_THREADS = 64;
export const NSA_DECODE_REDUCE_THREADS = 256;

/** Query floats (G · T rows × E) the logits kernel stages; calls with more take the tiled kernel. */
export const NSA_DECODE_QUERY_FLOATS = 2048;

/** Queries per head up to which NSA scores with these kernels (decode steps; the backend's split-K bound). */
export const NSA_DECODE_MAX_QUERIES = 16;

/** Whether a call's scoring takes the decode kernels: few queries, and their rows fit the staging array. */
export function usesDecodeScoring(d: { readonly querySeq: number; readonly groupSize: number; readonly headDim: number }, quest: boolean): boolean {
  return d.querySeq <= NSA_DECODE_MAX_QUERIES && d.groupSize * d.querySeq * d.headDim * (quest ? 2 : 1) <= NSA_DECODE_QUERY_FLOATS;
}

/** Compile-time shape of the decode kernels. */
export interface NsaDecodeScoreOptions {
  readonly headDim: number;
  readonly groupSize: number;
  readonly quest: boolean;
}

const PARAMS = /* wgsl */ `
struct Params {
  querySeq: u32, queryOffset: u32, slots: u32, tilesX: u32,
  windows: u32, compressionBlock: u32, compressionStride: u32, selectionBlock: u32,
  blocks: u32, windowTiles: u32, rangeRows: u32, scale: f32,
}
@group(0) @binding(0) var<uniform> P: Params;

const NEG: f32 = -3.0e38;

${VISIBLE_WINDOWS_WGSL}`;

/**
 * Logits kernel. Bindings: 0 params, 1 q, 2 pooled windows (means, or [max | min] for 'quest'), 3 logits `[slot][G · T][windows]`.
 * When E is a multiple of 4 the windows are read as vec4 (a thread's E / 4 loads, four channels each).
 */
export const nsaDecodeLogitsWgsl = memoKernel(function nsaDecodeLogitsWgsl(o: NsaDecodeScoreOptions): string {
  const E = o.quest ? 2 * o.headDim : o.headDim;
  const vectorized = E % 4 === 0;
  const L = vectorized ? 4 : 1;
  const element = vectorized ? 'vec4<f32>' : 'f32';
  // Channel e of the staged row: q, or [q⁺ | q⁻] for 'quest'.
  const stage = (e: string) => (o.quest ? `select(min(q[base + ${e} - D], 0.0), max(q[base + ${e}], 0.0), ${e} < D)` : `q[base + ${e}]`);
  return /* wgsl */ `${PARAMS}
const D: u32 = ${o.headDim}u;
const E: u32 = ${E}u;
// Channels per load: E / L loads per window.
const L: u32 = ${L}u;
const G: u32 = ${o.groupSize}u;
const NT: u32 = ${NSA_DECODE_LOGIT_THREADS}u;

@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> keys: array<${element}>;
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;

var<workgroup> qs: array<${element}, ${NSA_DECODE_QUERY_FLOATS / L}>;

@compute @workgroup_size(${NSA_DECODE_LOGIT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.windowTiles) { return; }
  let slot = linear / P.windowTiles;
  let w = (linear % P.windowTiles) * NT + lid;
  let rows = G * P.querySeq;
  // Row r = g · T + i of the slot is query head g's query i (the tiled kernel's aAt).
  // Each thread stages whole elements (one vec4 store each, no component stores).
  for (var x = lid; x < rows * (E / L); x += NT) {
    let base = (slot * rows + x / (E / L)) * D;
${vectorized ? [0, 1, 2, 3].map((c) => `    let e${c} = (x % (E / L)) * 4u + ${c}u;`).join('\n') + `\n    qs[x] = vec4<f32>(${[0, 1, 2, 3].map((c) => stage(`e${c}`)).join(', ')});` : `    qs[x] = ${stage('x % E')};`}
  }
  workgroupBarrier();
  if (w >= P.windows) { return; }
  let k0 = (slot * P.windows + w) * (E / L);
  for (var r = 0u; r < rows; r++) {
    var acc = ${element}(0.0);
    for (var e = 0u; e < E / L; e++) { acc = fma(qs[r * (E / L) + e], keys[k0 + e], acc); }
    let t = P.queryOffset + r % P.querySeq;
    logits[(slot * rows + r) * P.windows + w] = select(NEG, (${vectorized ? '(acc.x + acc.y) + (acc.z + acc.w)' : 'acc'}) * P.scale, w < visible(t));
  }
}
`;
});

/** Reduce kernel. Bindings: 0 params, 1 logits, 2 importance (the top-n kernel's input). */
export const nsaDecodeReduceWgsl = memoKernel(function nsaDecodeReduceWgsl(o: Pick<NsaDecodeScoreOptions, 'groupSize'>): string {
  const NT = NSA_DECODE_REDUCE_THREADS;
  return /* wgsl */ `${PARAMS}
const G: u32 = ${o.groupSize}u;
const NT: u32 = ${NT}u;

@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> importance: array<f32>;

var<workgroup> red: array<f32, ${NT}>;
var<workgroup> lse: array<f32, ${o.groupSize}>;

fn reduceMax(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = NT / 2u; s > 0u; s /= 2u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let out = red[0];
  workgroupBarrier();
  return out;
}

fn reduceSum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = NT / 2u; s > 0u; s /= 2u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let out = red[0];
  workgroupBarrier();
  return out;
}

@compute @workgroup_size(${NT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.querySeq) { return; }
  let slot = linear / P.querySeq;
  let i = linear % P.querySeq;
  let nc = visible(P.queryOffset + i);
  if (nc == 0u) { return; }
  let rows = G * P.querySeq;
  for (var g = 0u; g < G; g++) {
    let base = (slot * rows + g * P.querySeq + i) * P.windows;
    var m = NEG;
    for (var w = lid; w < nc; w += NT) { m = max(m, logits[base + w]); }
    let big = reduceMax(m, lid);
    var l = 0.0;
    for (var w = lid; w < nc; w += NT) { l += exp(logits[base + w] - big); }
    let total = reduceSum(l, lid);
    if (lid == 0u) { lse[g] = big + log(total); }
  }
  workgroupBarrier();
  let lp = P.selectionBlock;
  let blocksSeen = min(P.blocks, ((nc - 1u) * P.compressionStride + P.compressionBlock - 1u) / lp + 1u);
  for (var j = lid; j < blocksSeen; j += NT) {
    var first = 0u;
    if (j * lp >= P.compressionBlock) { first = (j * lp - P.compressionBlock) / P.compressionStride + 1u; }
    let last = min(((j + 1u) * lp - 1u) / P.compressionStride, nc - 1u);
    if (first <= last) {
      var v = 0.0;
      for (var w = first; w <= last; w++) {
        var p = 0.0;
        for (var g = 0u; g < G; g++) { p += exp(logits[(slot * rows + g * P.querySeq + i) * P.windows + w] - lse[g]); }
        v += p;
      }
      importance[(slot * P.blocks + j) * P.rangeRows + i] = v;
    }
  }
}
`;
});
