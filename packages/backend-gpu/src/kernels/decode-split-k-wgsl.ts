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
 * kernel (`decode-merge-wgsl.ts`) combines the partitions. A workgroup of 256 threads owns one
 * (query slot, row, partition) and walks its keys 64 at a time with the online softmax
 * (arXiv:2205.14135 Alg. 1): four threads score each key of the tile (every fourth vec4 of its
 * channels each, so four neighbours read 64 contiguous bytes), the tile maximum is a workgroup
 * reduction, and four groups of 64 threads accumulate p·v over a quarter of the tile's keys each
 * for their own value columns (coalesced reads of V), added in workgroup memory at the end.
 * Partitions spread one decode query over many workgroups where the prefill kernel would give it
 * one (32 workgroups for 32 heads at 64k keys would leave most of an H100 idle).
 *
 * Until the nineteenth session a workgroup had 64 threads, one per key, each reading its key's
 * 512 bytes alone: on the H100 at 64k (H = 32, D = 128) a dense decode step's partial pass took
 * 0.93 ms (2.3 TB/s of K/V) with 32 KV heads and 0.47 ms with 8, against 0.74 / 0.29 ms now
 * (2.9 TB/s: 85 % of the HBM's peak); a sparse step's pass over ~1 500 selected keys a row
 * 0.034 → 0.028 ms (MoBA's).
 *
 * An empty partition (past the row's last visible key) writes m = −3e38 (finite, so the merge
 * needs no infinity) and l = 0.
 *
 * Modes ({@link DecodeKernelOptions}; the default is the kernel above, bindings 0 params
 * ({@link DECODE_PARTIAL_PARAMS}), 1 q, 2 k, 3 v, 4 partial). In every mode key t of the chunk's
 * KV slot s is row `s · keyStride + t` of k and v (a KV cache's capacity between slots):
 *
 * - `keys: 'pages'` — the keys of a row come from a page list instead of a contiguous range (a
 *   sparse decode over selected pages, DELTA's sparse layers): the list of batch b is
 *   `pages[bounds[2b] .. bounds[2b + 1])` (logical page indices, as a top-k kernel writes them),
 *   shared by every KV head of the batch. Partition p holds the list's entries `[p·PP, (p+1)·PP)`
 *   (PP = `pagesPerPartition`), flattened to keys x → page[x / P]·P + x mod P (P = `pageSize`;
 *   keys past `keySeq` in a last, partial page are dropped). One decode query per query slot at
 *   the last position, so every listed key up to `keySeq` is visible (no causal mask). Params
 *   {@link DECODE_PAGES_PARAMS}; bindings 0 params, 1 q `[slots][D]`, 2 k, 3 v (the chunk's),
 *   4 bounds, 5 pages, 6 partial. The partial records and the merge are the default mode's.
 * - `keys: 'selection'` — the keys of a query row are its row of a core `Selection` in the backend's
 *   CSR layout (the sparse executor's decode path): query row i of query slot s reads selection row
 *   `(scopeKv ? s / groupSize : s) · selRows + i / queryBlockSize`, entries
 *   `indices[bounds[2r] .. bounds[2r + 1])`, token indices or blocks expanded to their tokens
 *   (`kindBlock`), ascending. Partition p holds the row's flattened keys `[p·PS, (p+1)·PS)`, and a
 *   key is attended when it is below `keySeq` and, under causal, at most the query's position.
 *   Params {@link DECODE_SELECTION_PARAMS}; bindings 0 params, 1 q, 2 k, 3 v (the chunk's),
 *   4 bounds, 5 indices, 6 partial; the partial records and the merge are the default mode's.
 * - `dumpScores: true` (range keys only) — also writes every logit the partition scores,
 *   `logits[((querySlotBase + slot)·querySeq + i)·keySeq + j] = s_j`, into a call-wide
 *   `[B·Hq·querySeq][keySeq]` buffer (querySlotBase: the chunk's first query slot in the call), so
 *   a selection that needs the dense decode's scores (DELTA's Δ-layers, the reference's fused
 *   FlashInfer dump) takes them from the attention pass instead of a second pass over the keys.
 *   Bindings 0–4 as the default, 5 the logits, 6 the {@link DECODE_DUMP_PARAMS} uniform.
 */
import { memoKernel } from './memo-kernel.js';

/** Uniform parameter block of the split-K partial kernel (12 × 4 bytes, order matters). */
export const DECODE_PARTIAL_PARAMS = [
  'querySeq', 'keySeq', 'queryOffset', 'causal',
  'slots', 'groupSize', 'partitions', 'partitionSize',
  'tilesX', 'scale', 'pad0', 'keyStride',
] as const;

/** Keys per tile of the partial kernel (a partition is a whole number of tiles). */
export const DECODE_THREADS = 64;

/** Uniform parameter block of the page-list mode (`keys: 'pages'`; 12 × 4 bytes, order matters). */
export const DECODE_PAGES_PARAMS = [
  'keySeq', 'slots', 'groupSize', 'kvHeads',
  'slot0', 'pageSize', 'partitions', 'pagesPerPartition',
  'tilesX', 'scale', 'pad0', 'keyStride',
] as const;

/** Uniform parameter block of the selection mode (`keys: 'selection'`; 16 × 4 bytes, order matters). */
export const DECODE_SELECTION_PARAMS = [
  'querySeq', 'keySeq', 'queryOffset', 'causal',
  'slots', 'groupSize', 'partitions', 'partitionSize',
  'selRows', 'queryBlockSize', 'scopeKv', 'kindBlock',
  'blockSize', 'tilesX', 'scale', 'keyStride',
] as const;

/** Uniform block of the score dump (`dumpScores: true`; 4 × 4 bytes), binding 6. */
export const DECODE_DUMP_PARAMS = ['querySlotBase', 'pad0', 'pad1', 'pad2'] as const;

/** Where the partial kernel's keys come from: a contiguous range (default), a page list, or a selection's rows. */
export type DecodeKeySource = 'range' | 'pages' | 'selection';

/** Options of {@link decodePartialWgsl}. */
export interface DecodeKernelOptions {
  readonly headDim: number;
  readonly valueDim: number;
  /** `'range'` (default): keys `[0, visible)`; `'pages'`: a page list per batch; `'selection'`: a selection's rows (see the module comment). */
  readonly keys?: DecodeKeySource;
  /** Also write every scored logit into a call-wide buffer (range keys only; see the module comment). */
  readonly dumpScores?: boolean;
}

/** Floats of one partial record: m, l and the Dv unnormalised output columns. */
export function decodePartialRecord(valueDim: number): number {
  return 2 + valueDim;
}

/**
 * Queries per step up to which decoders use the split-K kernel, and the sparse executor its
 * selection mode; longer steps (a prompt given as the first step) take the tiled prefill kernels,
 * which fill the GPU on their own.
 */
export const SPLIT_K_MAX_QUERIES = 16;

/**
 * Workgroups the split-K kernel aims for over the whole call (an H100 holds ~1 k workgroups of
 * 256 threads at once: two waves); each partition is at least one 64-key tile. A 64k dense decode
 * step on the H100 (32 rows): 2 048 → 0.283 ms with 8 KV heads, 4 096 0.296 ms, 8 192 0.333 ms;
 * 0.747–0.750 ms for all three with 32.
 */
const SPLIT_K_TARGET_WORKGROUPS = 2048;

/**
 * Most partitions of one row: one workgroup merges a row's partials, so past a few hundred the
 * merge costs more than the partitions gain. A decoder's one-KV-slot dispatch at 64k (one row of
 * 1 024 key tiles, H100, the 64-thread kernel before the nineteenth session): 1 024 partitions
 * 7.3 ms for 32 heads, 512 4.5 ms, 256 3.7 ms, 128 4.6 ms.
 */
const SPLIT_K_MAX_PARTITIONS = 256;

/** How a call's keys are split: `partitions` of `partitionSize` keys (a multiple of 64). */
export interface SplitKPlan {
  readonly partitions: number;
  readonly partitionSize: number;
}

/** The key partitions of `rows` query rows (one dispatch's) of up to `keys` keys each: enough workgroups to fill a large GPU, at most {@link SPLIT_K_MAX_PARTITIONS} per row. */
export function splitKPartitions(rows: number, keys: number): SplitKPlan {
  const tiles = Math.max(1, Math.ceil(keys / DECODE_THREADS));
  const wanted = Math.min(tiles, SPLIT_K_MAX_PARTITIONS, Math.max(1, Math.ceil(SPLIT_K_TARGET_WORKGROUPS / Math.max(1, rows))));
  const partitionSize = Math.ceil(tiles / wanted) * DECODE_THREADS;
  return { partitions: Math.max(1, Math.ceil(keys / partitionSize)), partitionSize };
}

/** The page-list mode's workgroup → (query slot, partition, positions in the list) mapping. */
const PAGES_PROLOGUE = `  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.partitions) { return; }
  let part = linear % P.partitions;
  let row = linear / P.partitions;
  let kvLocal = row / P.groupSize;
  let batch = (P.slot0 + kvLocal) / P.kvHeads;
  let begin = bounds[2u * batch];
  let listed = bounds[2u * batch + 1u] - begin;
  let kvBase = kvLocal * P.keyStride;
  let start = min(part * P.pagesPerPartition, listed) * P.pageSize;
  let end = min((part + 1u) * P.pagesPerPartition, listed) * P.pageSize;
`;

/** Workgroup → (query slot, query row i, partition) and the row's visible keys: the range and selection modes' common start. */
const QUERY_ROW_PROLOGUE = `  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.querySeq * P.partitions) { return; }
  let part = linear % P.partitions;
  let row = linear / P.partitions;
  let slot = row / P.querySeq;
  let i = row % P.querySeq;
  let kvBase = (slot / P.groupSize) * P.keyStride;
  let visible = select(P.keySeq, min(P.keySeq, P.queryOffset + i + 1u), P.causal == 1u);
`;

/** The range mode's partition: keys [p·PS, (p+1)·PS) of the visible ones. */
const RANGE_PROLOGUE = `${QUERY_ROW_PROLOGUE}  let start = part * P.partitionSize;
  let end = min(start + P.partitionSize, visible);
`;

/** The selection mode's partition: flattened keys [p·PS, (p+1)·PS) of the query's selection row. */
const SELECTION_PROLOGUE = `${QUERY_ROW_PROLOGUE}  let selRow = select(slot, slot / P.groupSize, P.scopeKv == 1u) * P.selRows + i / P.queryBlockSize;
  let begin = bounds[2u * selRow];
  let unit = select(1u, P.blockSize, P.kindBlock == 1u);
  let listed = (bounds[2u * selRow + 1u] - begin) * unit;
  let start = min(part * P.partitionSize, listed);
  let end = min(start + P.partitionSize, listed);
`;

/**
 * Generates the WGSL of the split-K partial kernel (vec4 key loads when the head dim allows) in
 * the mode `o` asks for (see the module comment).
 */
export const decodePartialWgsl = memoKernel((o: DecodeKernelOptions): string => generatePartial(o));

/** Threads per workgroup of the partial kernel: {@link DECODE_KEY_SPLIT} per key of a {@link DECODE_THREADS}-key tile. */
export const DECODE_PARTIAL_WORKGROUP = 256;

/** Threads that share one key's dot product, and key groups that share a tile's p·v. */
export const DECODE_KEY_SPLIT = DECODE_PARTIAL_WORKGROUP / DECODE_THREADS;

/** Keys per step of the p·v loop (see the loop). */
const PV_UNROLL = 8;

function generatePartial(o: DecodeKernelOptions): string {
  const vec = o.headDim % 4 === 0;
  const width = vec ? o.headDim / 4 : o.headDim;
  const element = vec ? 'vec4<f32>' : 'f32';
  const split = DECODE_KEY_SPLIT;
  const columns = Math.ceil(o.valueDim / DECODE_THREADS);
  const range = Array.from({ length: columns }, (_, c) => c);
  const source = o.keys ?? 'range';
  if (source !== 'range' && source !== 'pages' && source !== 'selection') throw new Error(`decodePartialWgsl: unknown key source ${String(o.keys)}`);
  const pages = source === 'pages';
  const listed = source !== 'range';
  if (listed && o.dumpScores) throw new Error(`decodePartialWgsl: dumpScores needs range keys (the ${source} mode has no dump)`);
  const dump = o.dumpScores === true;
  // A thread's vectors of its key: every split-th, interleaved with its neighbours' (64 contiguous
  // bytes per four threads), loaded `unroll` at a time where they divide evenly.
  const unroll = [8, 4, 2].find((u) => width % (split * u) === 0) ?? 1;
  const keyOf = pages
    ? `      let x = k0 + lid;
      var key = 0u;
      var alive = false;
      if (x < end) {
        key = pages[begin + x / P.pageSize] * P.pageSize + x % P.pageSize;
        alive = key < P.keySeq;
      }`
    : listed
    ? `      let x = k0 + lid;
      var key = 0u;
      var alive = false;
      if (x < end) {
        key = select(indices[begin + x], indices[begin + x / P.blockSize] * P.blockSize + x % P.blockSize, P.kindBlock == 1u);
        alive = key < visible;
      }`
    : `      let key = k0 + lid;
      let alive = key < end;`;
  return /* wgsl */ `
const D: u32 = ${o.headDim}u;
const W: u32 = ${width}u;
const DV: u32 = ${o.valueDim}u;
const NT: u32 = ${DECODE_PARTIAL_WORKGROUP}u;
const TK: u32 = ${DECODE_THREADS}u;
const SPLIT: u32 = ${split}u;
const GROUP: u32 = ${DECODE_THREADS / split}u;
const REC: u32 = ${decodePartialRecord(o.valueDim)}u;
const NEG: f32 = -3.0e38;

struct Params {
${
  pages
    ? `  keySeq: u32, slots: u32, groupSize: u32, kvHeads: u32,
  slot0: u32, pageSize: u32, partitions: u32, pagesPerPartition: u32,
  tilesX: u32, scale: f32, pad0: u32, keyStride: u32,`
    : `  querySeq: u32, keySeq: u32, queryOffset: u32, causal: u32,
  slots: u32, groupSize: u32, partitions: u32, partitionSize: u32,
${listed ? `  selRows: u32, queryBlockSize: u32, scopeKv: u32, kindBlock: u32,
  blockSize: u32, tilesX: u32, scale: f32, keyStride: u32,` : '  tilesX: u32, scale: f32, pad0: u32, keyStride: u32,'}`
}
}
${dump ? 'struct DumpParams { querySlotBase: u32, pad0: u32, pad1: u32, pad2: u32 }\n' : ''}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<${element}>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
${
  listed
    ? `@group(0) @binding(4) var<storage, read> bounds: array<u32>;
@group(0) @binding(5) var<storage, read> ${pages ? 'pages' : 'indices'}: array<u32>;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;`
    : '@group(0) @binding(4) var<storage, read_write> partial: array<f32>;'
}
${dump ? '@group(0) @binding(5) var<storage, read_write> dumpLogits: array<f32>;\n@group(0) @binding(6) var<uniform> dump: DumpParams;\n' : ''}
var<workgroup> qs: array<${element}, W>;
var<workgroup> keys: array<u32, TK>;
var<workgroup> live: array<u32, TK>;
var<workgroup> dots: array<f32, NT>;
var<workgroup> ps: array<f32, TK>;
var<workgroup> red: array<f32, TK>;
var<workgroup> sums: array<f32, ${split * columns * DECODE_THREADS}>;

@compute @workgroup_size(${DECODE_PARTIAL_WORKGROUP})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${pages ? PAGES_PROLOGUE : listed ? SELECTION_PROLOGUE : RANGE_PROLOGUE}${
  vec
    ? `  for (var e = lid; e < W; e += NT) {
    let at = (row * D) + 4u * e;
    qs[e] = vec4<f32>(q[at], q[at + 1u], q[at + 2u], q[at + 3u]);
  }`
    : `  for (var e = lid; e < W; e += NT) { qs[e] = q[row * D + e]; }`
}
  // Scoring: thread lid takes vectors lid % SPLIT, + SPLIT, ... of key lid / SPLIT; p·v: thread
  // (group, lane) takes keys [group · GROUP, +GROUP) of the tile and columns lane, lane + TK, ...
  let mine = lid / SPLIT;
  let slice = lid % SPLIT;
  let group = lid / TK;
  let lane = lid % TK;
  var m = NEG;
  var l = 0.0;
${range.map((c) => `  var o${c} = 0.0;`).join('\n')}
  for (var k0 = start; k0 < end; k0 += TK) {
    if (lid < TK) {
${keyOf}
      keys[lid] = select(0u, key, alive);
      live[lid] = select(0u, 1u, alive);
    }
    workgroupBarrier();
    var dot = ${vec ? 'vec4<f32>(0.0)' : '0.0'};
    if (live[mine] == 1u) {
      let at = (kvBase + keys[mine]) * W;
      for (var e = slice; e < W; e += ${split * unroll}u) {
${Array.from({ length: unroll }, (_, u) => `        let k${u} = k[at + e + ${split * u}u];`).join('\n')}
${Array.from({ length: unroll }, (_, u) => `        dot = fma(qs[e + ${split * u}u], k${u}, dot);`).join('\n')}
      }
    }
    dots[lid] = ${vec ? 'dot.x + dot.y + dot.z + dot.w' : 'dot'};
    workgroupBarrier();
    var s = NEG;
    if (lid < TK) {
      if (live[lid] == 1u) {
        s = (${Array.from({ length: split }, (_, u) => `dots[SPLIT * lid + ${u}u]`).join(' + ')}) * P.scale;
${dump ? '        dumpLogits[((dump.querySlotBase + slot) * P.querySeq + i) * P.keySeq + keys[lid]] = s;\n' : ''}      }
      red[lid] = s;
    }
    workgroupBarrier();
    for (var w = TK / 2u; w > 0u; w = w / 2u) {
      if (lid < w) { red[lid] = max(red[lid], red[lid + w]); }
      workgroupBarrier();
    }
    let mNew = max(m, red[0]);
    let alpha = exp(m - mNew);
    m = mNew;
    if (lid < TK) {
      let p = select(0.0, exp(s - mNew), live[lid] == 1u);
      l = l * alpha + p;
      ps[lid] = p;
    }
    workgroupBarrier();
${range.map((c) => `    o${c} = o${c} * alpha;`).join('\n')}
    // ${PV_UNROLL} keys at a time: their value loads are all issued before the first is used, so a
    // thread waits for memory once per ${PV_UNROLL} keys instead of once per key.
    let j1 = min(group * GROUP + GROUP, min(TK, end - k0));
    var j = group * GROUP;
    for (; j + ${PV_UNROLL}u <= j1; j += ${PV_UNROLL}u) {
${Array.from({ length: PV_UNROLL }, (_, u) => `      let b${u} = (kvBase + keys[j + ${u}u]) * DV;`).join('\n')}
${range.map((c) => `      if (lane + ${c * DECODE_THREADS}u < DV) {
${Array.from({ length: PV_UNROLL }, (_, u) => `        let v${u} = v[b${u} + lane + ${c * DECODE_THREADS}u];`).join('\n')}
${Array.from({ length: PV_UNROLL }, (_, u) => `        o${c} = fma(ps[j + ${u}u], v${u}, o${c});`).join('\n')}
      }`).join('\n')}
    }
    for (; j < j1; j++) {
      let pj = ps[j];
      let vBase = (kvBase + keys[j]) * DV;
${range.map((c) => `      if (lane + ${c * DECODE_THREADS}u < DV) { o${c} = fma(pj, v[vBase + lane + ${c * DECODE_THREADS}u], o${c}); }`).join('\n')}
    }
    workgroupBarrier();
  }
  if (lid < TK) { red[lid] = l; }
  workgroupBarrier();
  for (var w = TK / 2u; w > 0u; w = w / 2u) {
    if (lid < w) { red[lid] = red[lid] + red[lid + w]; }
    workgroupBarrier();
  }
${range.map((c) => `  sums[(group * ${columns}u + ${c}u) * TK + lane] = o${c};`).join('\n')}
  workgroupBarrier();
  let base = (row * P.partitions + part) * REC;
  if (lid == 0u) {
    partial[base] = m;
    partial[base + 1u] = red[0];
  }
  if (group == 0u) {
${range.map((c) => `    if (lane + ${c * DECODE_THREADS}u < DV) {
      var o = 0.0;
      for (var g = 0u; g < SPLIT; g++) { o += sums[(g * ${columns}u + ${c}u) * TK + lane]; }
      partial[base + 2u + lane + ${c * DECODE_THREADS}u] = o;
    }`).join('\n')}
  }
}
`;
}
