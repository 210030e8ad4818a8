/**
 * Split-K ("flash-decoding") attention for a few queries per head, first pass: partial softmax
 * statistics of one partition of the keys.
 *
 * For query row i (position pos(i), visible keys j ≤ pos(i) under causal) and partition p
 * holding keys [p·PS, min((p+1)·PS, visible)):
 *
 *   s_j = scale · q_i·k_j
 *   m_p = max_j s_j;  l_p = Σ_j e^{s_j − m_p};  o_p = Σ_j e^{s_j − m_p} v_j       (unnormalised)
 *
 * written as one record `[m_p, l_p, o_p[0..Dv)]` per (query slot, row, partition); the merge
 * kernel (`decode-merge-wgsl.ts`) combines the partitions. A workgroup owns one (query slot, row,
 * partition) and walks its keys 64 at a time with the online softmax (arXiv:2205.14135 Alg. 1):
 * thread t scores key t of the tile, the tile maximum is a workgroup reduction, and each thread
 * accumulates p·v for its own value columns (coalesced reads of V). Partitions spread one decode
 * query over many workgroups where the prefill kernel would give it one (32 workgroups for 32
 * heads at 64k keys would leave most of an H100 idle).
 *
 * An empty partition (past the row's last visible key) writes m = −3e38 (finite, so the merge
 * needs no infinity) and l = 0.
 */

/** Uniform parameter block of the split-K partial kernel (12 × 4 bytes, order matters). */
export const DECODE_PARTIAL_PARAMS = [
  'querySeq', 'keySeq', 'queryOffset', 'causal',
  'slots', 'groupSize', 'partitions', 'partitionSize',
  'tilesX', 'scale', 'pad0', 'pad1',
] as const;

/** Threads per workgroup (and keys per tile) of the partial kernel. */
export const DECODE_THREADS = 64;

/** Options of {@link decodePartialWgsl}. */
export interface DecodeKernelOptions {
  readonly headDim: number;
  readonly valueDim: number;
}

/** Floats of one partial record: m, l and the Dv unnormalised output columns. */
export function decodePartialRecord(valueDim: number): number {
  return 2 + valueDim;
}

/** Generates the WGSL of the split-K partial kernel (vec4 key loads when the head dim allows). */
export function decodePartialWgsl(o: DecodeKernelOptions): string {
  const vec = o.headDim % 4 === 0;
  const columns = Math.ceil(o.valueDim / DECODE_THREADS);
  const range = Array.from({ length: columns }, (_, c) => c);
  return /* wgsl */ `
const D: u32 = ${o.headDim}u;
const DV: u32 = ${o.valueDim}u;
const NT: u32 = ${DECODE_THREADS}u;
const REC: u32 = ${decodePartialRecord(o.valueDim)}u;
const NEG: f32 = -3.0e38;

struct Params {
  querySeq: u32, keySeq: u32, queryOffset: u32, causal: u32,
  slots: u32, groupSize: u32, partitions: u32, partitionSize: u32,
  tilesX: u32, scale: f32, pad0: u32, pad1: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<${vec ? 'vec4<f32>' : 'f32'}>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read_write> partial: array<f32>;

var<workgroup> qs: array<${vec ? 'vec4<f32>' : 'f32'}, ${vec ? o.headDim / 4 : o.headDim}>;
var<workgroup> ps: array<f32, ${DECODE_THREADS}>;
var<workgroup> red: array<f32, ${DECODE_THREADS}>;

@compute @workgroup_size(${DECODE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.querySeq * P.partitions) { return; }
  let part = linear % P.partitions;
  let row = linear / P.partitions;
  let slot = row / P.querySeq;
  let i = row % P.querySeq;
  let kvBase = (slot / P.groupSize) * P.keySeq;
  let visible = select(P.keySeq, min(P.keySeq, P.queryOffset + i + 1u), P.causal == 1u);
  let start = part * P.partitionSize;
  let end = min(start + P.partitionSize, visible);
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
  for (var k0 = start; k0 < end; k0 += NT) {
    let key = k0 + lid;
    let live = key < end;
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
    workgroupBarrier();
    let count = min(NT, end - k0);
${range.map((c) => `    o${c} = o${c} * alpha;`).join('\n')}
    for (var j = 0u; j < count; j++) {
      let pj = ps[j];
      let vBase = (kvBase + k0 + j) * DV;
${range.map((c) => `      if (lid + ${c * DECODE_THREADS}u < DV) { o${c} = fma(pj, v[vBase + lid + ${c * DECODE_THREADS}u], o${c}); }`).join('\n')}
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
${range.map((c) => `  if (lid + ${c * DECODE_THREADS}u < DV) { partial[base + 2u + lid + ${c * DECODE_THREADS}u] = o${c}; }`).join('\n')}
}
`;
}
