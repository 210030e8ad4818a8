/**
 * Kernel: a DELTA sparse layer's decode attention over its source Δ-layer's page list, split-K
 * ("flash-decoding") style, first pass. The page list of batch b is
 * `pages[bounds[2b] .. bounds[2b + 1])` (ascending logical page indices, as the top-k kernel
 * writes them); every KV head of the batch and every layer reusing the list attends to exactly
 * those pages of its own cache. Partition p of a query row holds the list's pages
 * `[p·PP, (p+1)·PP)`, flattened to keys x → page[x / P]·P + x mod P (keys past `keySeq` in the
 * last page are dropped):
 *
 *   s_j = scale · q·k_j;  m_p = max_j s_j;  l_p = Σ_j e^{s_j − m_p};  o_p = Σ_j e^{s_j − m_p} v_j
 *
 * written as the backend's split-K partial record `[m_p, l_p, o_p[0..Dv)]` per (query slot,
 * partition), so the backend's merge kernel (`decodeMergeWgsl`) finishes the row exactly as for
 * dense decode. A workgroup walks its partition 64 keys at a time with the online softmax (one key
 * per thread, the tile maximum a workgroup reduction, each thread accumulating p·v for its own
 * value columns). An empty partition writes m = −3e38 and l = 0, which the merge ignores. The
 * decode query sits at the last position, so every key of a selected page up to `keySeq` is
 * visible (no causal mask needed).
 */

/** Uniform parameter block of the page decode kernel (12 × 4 bytes, order matters). */
export const PAGE_DECODE_PARAMS = [
  'keySeq', 'slots', 'groupSize', 'kvHeads',
  'slot0', 'pageSize', 'partitions', 'pagesPerPartition',
  'tilesX', 'scale', 'pad0', 'pad1',
] as const;

/** Threads per workgroup (and keys per tile) of the page decode kernel. */
export const PAGE_DECODE_THREADS = 64;

/** Options of {@link pageDecodeWgsl}. */
export interface PageDecodeKernelOptions {
  readonly headDim: number;
  readonly valueDim: number;
}

/**
 * Generates the WGSL of the page decode kernel (vec4 key loads when the head dim allows).
 * Bindings: 0 params, 1 q `[slots·G][D]`, 2 k, 3 v (the chunk's), 4 bounds, 5 pages, 6 partial.
 */
export function pageDecodeWgsl(o: PageDecodeKernelOptions): string {
  const vec = o.headDim % 4 === 0;
  const columns = Math.ceil(o.valueDim / PAGE_DECODE_THREADS);
  const range = Array.from({ length: columns }, (_, c) => c);
  return /* wgsl */ `
const D: u32 = ${o.headDim}u;
const DV: u32 = ${o.valueDim}u;
const NT: u32 = ${PAGE_DECODE_THREADS}u;
const REC: u32 = ${2 + o.valueDim}u;
const NEG: f32 = -3.0e38;

struct Params {
  keySeq: u32, slots: u32, groupSize: u32, kvHeads: u32,
  slot0: u32, pageSize: u32, partitions: u32, pagesPerPartition: u32,
  tilesX: u32, scale: f32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<${vec ? 'vec4<f32>' : 'f32'}>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> bounds: array<u32>;
@group(0) @binding(5) var<storage, read> pages: array<u32>;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;

var<workgroup> qs: array<${vec ? 'vec4<f32>' : 'f32'}, ${vec ? o.headDim / 4 : o.headDim}>;
var<workgroup> ps: array<f32, ${PAGE_DECODE_THREADS}>;
var<workgroup> keys: array<u32, ${PAGE_DECODE_THREADS}>;
var<workgroup> red: array<f32, ${PAGE_DECODE_THREADS}>;

@compute @workgroup_size(${PAGE_DECODE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.partitions) { return; }
  let part = linear % P.partitions;
  let row = linear / P.partitions;
  let kvLocal = row / P.groupSize;
  let batch = (P.slot0 + kvLocal) / P.kvHeads;
  let begin = bounds[2u * batch];
  let count = bounds[2u * batch + 1u] - begin;
  let first = min(part * P.pagesPerPartition, count);
  let last = min(first + P.pagesPerPartition, count);
  let n = (last - first) * P.pageSize;
  let kvBase = kvLocal * P.keySeq;
${
  vec
    ? `  for (var e = lid; e < D / 4u; e += NT) {
    let at = (row * D) + 4u * e;
    qs[e] = vec4<f32>(q[at], q[at + 1u], q[at + 2u], q[at + 3u]);
  }`
    : `  for (var e = lid; e < D; e += NT) { qs[e] = q[row * D + e]; }`
}
  workgroupBarrier();
  var m = NEG;
  var l = 0.0;
${range.map((c) => `  var o${c} = 0.0;`).join('\n')}
  for (var x0 = 0u; x0 < n; x0 += NT) {
    let x = x0 + lid;
    var key = 0u;
    var live = false;
    if (x < n) {
      key = pages[begin + first + x / P.pageSize] * P.pageSize + x % P.pageSize;
      live = key < P.keySeq;
    }
    var s = NEG;
    if (live) {
${
  vec
    ? `      var acc = vec4<f32>(0.0);
      let at = (kvBase + key) * (D / 4u);
      for (var e = 0u; e < D / 4u; e++) { acc = fma(qs[e], k[at + e], acc); }
      s = (acc.x + acc.y + acc.z + acc.w) * P.scale;`
    : `      var acc = 0.0;
      let at = (kvBase + key) * D;
      for (var e = 0u; e < D; e++) { acc = fma(qs[e], k[at + e], acc); }
      s = acc * P.scale;`
}
    }
    red[lid] = s;
    workgroupBarrier();
    for (var w = NT / 2u; w > 0u; w = w / 2u) {
      if (lid < w) { red[lid] = max(red[lid], red[lid + w]); }
      workgroupBarrier();
    }
    let mNew = max(m, red[0]);
    let alpha = exp(m - mNew);
    let p = select(0.0, exp(s - mNew), live);
    m = mNew;
    l = l * alpha + p;
    ps[lid] = p;
    keys[lid] = select(0u, key, live);
    workgroupBarrier();
    let tile = min(NT, n - x0);
${range.map((c) => `    o${c} = o${c} * alpha;`).join('\n')}
    for (var j = 0u; j < tile; j++) {
      let pj = ps[j];
      let vBase = (kvBase + keys[j]) * DV;
${range.map((c) => `      if (lid + ${c * PAGE_DECODE_THREADS}u < DV) { o${c} = fma(pj, v[vBase + lid + ${c * PAGE_DECODE_THREADS}u], o${c}); }`).join('\n')}
    }
    workgroupBarrier();
  }
  red[lid] = l;
  workgroupBarrier();
  for (var w = NT / 2u; w > 0u; w = w / 2u) {
    if (lid < w) { red[lid] = red[lid] + red[lid + w]; }
    workgroupBarrier();
  }
  let base = (row * P.partitions + part) * REC;
  if (lid == 0u) {
    partial[base] = m;
    partial[base + 1u] = red[0];
  }
${range.map((c) => `  if (lid + ${c * PAGE_DECODE_THREADS}u < DV) { partial[base + 2u + lid + ${c * PAGE_DECODE_THREADS}u] = o${c}; }`).join('\n')}
}
`;
}
