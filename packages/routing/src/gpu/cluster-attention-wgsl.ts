/**
 * `routing`'s cluster-major attention (`combine: 'union'`): instead of one CSR row of keys per
 * query, each cluster's queries attend each cluster's keys in 64-query tiles, so a key tile is
 * read once per tile of the cluster's queries rather than once per query.
 *
 * For query i in clusters c₁ < c₂ < … (its row of the CSR selection, `routedRowsWgsl`):
 *
 *   row(i) = sinks ∪ local(i) ∪ ⋃_t (K_{c_t} ∩ [0, limit_i))
 *
 * is split into disjoint parts, each attended with its own online softmax and written as a
 * partial (out, lse):
 *
 *   window part   sinks ∪ local(i)                                 (`windowAttentionHooks`)
 *   cluster c_t   K_{c_t} minus the sinks, minus local(i) when it is always on, minus the keys
 *                 of the query's earlier clusters c₁ … c_{t−1}       (`clusterAttentionHooks`)
 *
 * which is the same de-duplication as the CSR rows (a key counts in the first of the query's
 * clusters that holds it, unless the sinks or the local window hold it). `local: 'uncovered'`
 * needs no exclusion: its window applies only when no cluster of the query has a visible key.
 * The merge (`clusterMergeWgsl`) combines a query's partials by their lse, in the CSR row's
 * order (window, then clusters ascending):
 *
 *   M = max_p lse_p,  out = Σ_p e^{lse_p − M} out_p / Σ_p e^{lse_p − M},  lse = M + ln Σ_p e^{lse_p − M}
 *
 * Both attention parts are the backend's flash kernel in `lists` mode (`FlashAttentionListHooks`):
 * the loop, softmax and value staging are the dense kernel's. Partials are indexed by a query's
 * entry in its cluster's query list (cluster parts) or `windowBase + qslot·querySeq + i`
 * (window part), so a query's partial of cluster c is found by a binary search of the ascending
 * list. Every buffer is per cluster or per query: nothing is S × S.
 */
import type { FlashAttentionListHooks } from '@sparse-attn/backend-gpu';
import { LISTED_PARTS } from './routing-selection-wgsl.js';
import { inclusiveScanU32 } from './wgsl-snippets.js';

/**
 * Uniform parameter block of the cluster attention kernels and the merge (order matters; `pad0`
 * stays 0). `keyStride`: rows between consecutive KV slots of k and v (the chunk's, see
 * `chunkKeyStride`): key t of KV slot s of the chunk is row `s · keyStride + t`, s counted from the
 * chunk's first slot (`slotOffset + kslot`).
 */
export const CLUSTER_ATTENTION_PARAMS = [
  'querySeq', 'keySeq', 'queryOffset', 'causal',
  'groupSize', 'slots', 'clusters', 'slotOffset',
  'sinkTokens', 'localMode', 'localWindow', 'windowBase',
  'tilesX', 'scale', 'pad0', 'tileRows',
  'keyOffsetsAt', 'queryOffsetsAt', 'tileOffsetsAt', 'keyBitsAt',
  'queryBitsAt', 'tileEntriesAt', 'windowRows', 'keyStride',
] as const;

/**
 * The u32 regions of a chunk's `lookup` buffer (one binding for what the kernels look up: the
 * limit on storage buffers per stage is 10 here, 8 in the WebGPU defaults), in u32 units, each
 * start 256-B aligned so producers can bind a region on its own.
 */
export interface ClusterMetaLayout {
  readonly keyOffsets: readonly [number, number];
  readonly queryOffsets: readonly [number, number];
  readonly tileOffsets: readonly [number, number];
  readonly keyBits: readonly [number, number];
  readonly queryBits: readonly [number, number];
  /** Each cluster-part tile's entry (query slot · C + cluster), `clusterTileEntriesWgsl`. */
  readonly tileEntries: readonly [number, number];
  /** u32 entries of the whole buffer. */
  readonly total: number;
}

/**
 * The most cluster-part tiles of `querySlots` query slots whose query lists hold at most
 * `listCapacity` entries per slot, in tiles of `tileRows` (one partial tile per cluster at most).
 */
export function clusterTileBound(querySlots: number, listCapacity: number, clusters: number, tileRows: number): number {
  return Math.ceil((querySlots * listCapacity) / tileRows) + querySlots * clusters;
}

/** {@link ClusterMetaLayout} of a chunk: `kvSlots` KV slots, `querySlots` query slots, C clusters, at most `maxTiles` cluster-part tiles. */
export function clusterMetaLayout(kvSlots: number, querySlots: number, clusters: number, keySeq: number, querySeq: number, maxTiles: number): ClusterMetaLayout {
  let at = 0;
  const region = (length: number): readonly [number, number] => {
    const start = at;
    at = Math.ceil((at + Math.max(1, length)) / 64) * 64;
    return [start, length];
  };
  const keyOffsets = region(kvSlots * (clusters + 1));
  const queryOffsets = region(querySlots * (clusters + 1));
  const tileOffsets = region(querySlots * clusters + 1);
  const keyBits = region(kvSlots * clusters * Math.ceil(keySeq / 32));
  const queryBits = region(querySlots * querySeq * Math.ceil(clusters / 32));
  const tileEntries = region(maxTiles);
  return { keyOffsets, queryOffsets, tileOffsets, keyBits, queryBits, tileEntries, total: at };
}

const params = `  querySeq: u32, keySeq: u32, queryOffset: u32, causal: u32,
  groupSize: u32, slots: u32, clusters: u32, slotOffset: u32,
  sinkTokens: u32, localMode: u32, localWindow: u32, windowBase: u32,
  tilesX: u32, scale: f32, pad0: u32, tileRows: u32,
  keyOffsetsAt: u32, queryOffsetsAt: u32, tileOffsetsAt: u32, keyBitsAt: u32,
  queryBitsAt: u32, tileEntriesAt: u32, windowRows: u32, keyStride: u32,`;

/** Earlier clusters of a tile row kept in workgroup memory (more: each key tests all of the query's clusters below c). */
export const EARLIER_IN_MEMORY = 4;

/** Threads per workgroup of the tile-offset scan and the merge. */
export const CLUSTER_THREADS = 256;

/** Threads of the merge per query (each walks the query's partials; 64 walked them twice per query for the same loads). */
export const MERGE_LANES = 32;

// Is key j in cluster column `column` (kv slot · C + c)? (`balancedTopWWgsl`'s bits)
const hasKey = /* wgsl */ `
fn hasKey(column: u32, j: u32) -> bool {
  return ((lookup[P.keyBitsAt + column * ((P.keySeq + 31u) / 32u) + j / 32u] >> (j % 32u)) & 1u) == 1u;
}`;

/**
 * The cluster parts. Workgroup → (query slot, cluster) by `tileEntries`, and the tile of the
 * cluster's query list by `tileOffsets` (exclusive prefix of ⌈|Q_c| / BR⌉ over (query slot,
 * cluster), `clusterTileOffsetsWgsl`, `clusterTileEntriesWgsl`). Bindings: 6 query lists, 7 key
 * lists, 8 the lookup buffer ({@link ClusterMetaLayout}: both lists' offsets `[slot][C + 1]`,
 * tile offsets and entries, key bits, query cluster bits `[qslot][i][⌈C / 32⌉]`), 9 pair counts
 * (`[qslot][C + 1]`, atomic).
 */
export function clusterAttentionHooks(): FlashAttentionListHooks {
  const E = EARLIER_IN_MEMORY;
  return {
    params,
    declarations: /* wgsl */ `
@group(0) @binding(6) var<storage, read> queryLists: array<u32>;
@group(0) @binding(7) var<storage, read> keyLists: array<u32>;
@group(0) @binding(8) var<storage, read> lookup: array<u32>;
@group(0) @binding(9) var<storage, read_write> pairCounts: array<atomic<u32>>;
const E: u32 = ${E}u;
var<workgroup> rowLocal: array<u32, BR>;
var<workgroup> rowBitsRow: array<u32, BR>;
var<workgroup> rowEarlierCount: array<u32, BR>;
var<workgroup> rowEarlier: array<u32, ${E} * BR>;
var<workgroup> wgKslot: u32;
var<workgroup> wgCluster: u32;
var<workgroup> wgEntry: u32;
${hasKey}

// Which of \`keys\` tile row r may attend besides causality: not a sink, not in its window of recent keys
// when that is always on, not in one of the query's earlier clusters.
fn clusterAllow(r: u32, keys: vec4<u32>) -> vec4<bool> {
  var ok = keys >= vec4<u32>(P.sinkTokens);
  let windowStart = rowLocal[r];
  ok = ok & !((keys >= vec4<u32>(windowStart)) & (keys <= vec4<u32>(rowPos[r])));
  let n = rowEarlierCount[r];
  if (n == 0u) { return ok; }
  let safe = select(vec4<u32>(0u), keys, keys != vec4<u32>(INVALID));
  let kslot = wgKslot;
  if (n <= E) {
    for (var t = 0u; t < n; t++) {
      let column = kslot * P.clusters + rowEarlier[r * E + t];
      for (var j = 0u; j < 4u; j++) { if (hasKey(column, safe[j])) { ok[j] = false; } }
    }
    return ok;
  }
  // More earlier clusters than fit: walk the query's cluster bits below c.
  let words = (P.clusters + 31u) / 32u;
  let c = wgCluster;
  for (var word = 0u; word * 32u < c; word++) {
    var left = lookup[P.queryBitsAt + rowBitsRow[r] * words + word];
    while (left != 0u) {
      let e = word * 32u + countTrailingZeros(left);
      left = left & (left - 1u);
      if (e >= c) { break; }
      for (var j = 0u; j < 4u; j++) { if (hasKey(kslot * P.clusters + e, safe[j])) { ok[j] = false; } }
    }
  }
  return ok;
}`,
    prologue: /* wgsl */ `
  if (lid == 0u) {
    let entries = P.slots * P.clusters;
    var found = INVALID;
    if (linear < lookup[P.tileOffsetsAt + entries]) { found = lookup[P.tileEntriesAt + linear]; }
    wgEntry = found;
    if (found != INVALID) {
      wgCluster = found % P.clusters;
      wgKslot = (found / P.clusters) / P.groupSize;
    }
  }
  let entry = workgroupUniformLoad(&wgEntry);
  if (entry == INVALID) { return; }
  let qslot = entry / P.clusters;
  let c = entry % P.clusters;
  let kslot = qslot / P.groupSize;
  let tile = linear - lookup[P.tileOffsetsAt + entry];
  let qFirst = lookup[P.queryOffsetsAt + qslot * (P.clusters + 1u) + c];
  let qEnd = lookup[P.queryOffsetsAt + qslot * (P.clusters + 1u) + c + 1u];
  let kFirst = lookup[P.keyOffsetsAt + kslot * (P.clusters + 1u) + c];
  let slotCount = lookup[P.keyOffsetsAt + kslot * (P.clusters + 1u) + c + 1u] - kFirst;
  let kvBase = (P.slotOffset + kslot) * P.keyStride;
  let words = (P.clusters + 31u) / 32u;
  if (lid < BR) {
    let m = qFirst + tile * BR + lid;
    rowQ[lid] = INVALID;
    rowOut[lid] = INVALID;
    rowPos[lid] = 0u;
    rowLocal[lid] = INVALID;
    rowEarlierCount[lid] = 0u;
    if (m < qEnd) {
      let i = queryLists[m];
      let position = P.queryOffset + i;
      rowQ[lid] = ((P.slotOffset * P.groupSize) + qslot) * P.querySeq + i;
      rowOut[lid] = m;
      rowPos[lid] = position;
      if (P.localMode == 1u) { rowLocal[lid] = max(position + 1u, P.localWindow) - P.localWindow; }
      let bitsRow = qslot * P.querySeq + i;
      rowBitsRow[lid] = bitsRow;
      var n = 0u;
      for (var word = 0u; word * 32u < c; word++) {
        var left = lookup[P.queryBitsAt + bitsRow * words + word];
        while (left != 0u) {
          let e = word * 32u + countTrailingZeros(left);
          left = left & (left - 1u);
          if (e >= c) { break; }
          if (n < E) { rowEarlier[lid * E + n] = e; }
          n++;
        }
      }
      rowEarlierCount[lid] = n;
    }
  }
  // The tile's last query position (the list ascends), for the causal cut of the key list.
  let lastPos = P.queryOffset + queryLists[min(qFirst + tile * BR + BR, qEnd) - 1u];
  workgroupBarrier();`,
    keyAt: (s) => `keyLists[kFirst + ${s}]`,
    allow: (i) => `clusterAllow(4u * ty + ${i}u, keys)`,
    onPairs: 'atomicAdd(&pairCounts[entry + entry / P.clusters], pairs);',
    workgroupBytes: 4 * (4 * 64 + E * 64 + 3),
  };
}

/**
 * The window parts: sinks ∪ local window of `P.windowRows` (≤ BR) consecutive queries of one
 * query slot, as one key list (the sinks, then the band of the tile's local windows;
 * {@link windowTileRows} picks the rows). Bindings: 6 key lists, 7 the lookup
 * buffer (key list offsets; query cluster bits, for `local: 'uncovered'`: does a cluster of the
 * query hold a visible key?), 8 pair counts.
 */
export function windowAttentionHooks(): FlashAttentionListHooks {
  return {
    params,
    declarations: /* wgsl */ `
@group(0) @binding(6) var<storage, read> keyLists: array<u32>;
@group(0) @binding(7) var<storage, read> lookup: array<u32>;
@group(0) @binding(8) var<storage, read_write> pairCounts: array<atomic<u32>>;
var<workgroup> rowLocal: array<u32, BR>;
var<workgroup> wgSlot: u32;

// Sinks, and the window of recent keys of the row (when it applies to the row).
fn windowAllow(r: u32, keys: vec4<u32>) -> vec4<bool> {
  let windowStart = rowLocal[r];
  return (keys < vec4<u32>(P.sinkTokens)) | ((keys >= vec4<u32>(windowStart)) & (keys <= vec4<u32>(rowPos[r])));
}`,
    prologue: /* wgsl */ `
  let R = P.windowRows;
  let tilesPerSlot = (P.querySeq + R - 1u) / R;
  if (linear >= P.slots * tilesPerSlot) { return; }
  let qslot = linear / tilesPerSlot;
  let i0 = (linear % tilesPerSlot) * R;
  let iLast = min(i0 + R, P.querySeq) - 1u;
  let kslot = qslot / P.groupSize;
  let kvBase = (P.slotOffset + kslot) * P.keyStride;
  let lastPos = P.queryOffset + iLast;
  let sinkCount = min(P.sinkTokens, P.keySeq);
  let bandStart = max(max(P.queryOffset + i0 + 1u, P.localWindow) - P.localWindow, sinkCount);
  let bandEnd = select(bandStart, max(bandStart, min(lastPos + 1u, P.keySeq)), P.localMode != 0u);
  let slotCount = sinkCount + bandEnd - bandStart;
  let words = (P.clusters + 31u) / 32u;
  if (lid < BR) {
    let i = i0 + lid;
    rowQ[lid] = INVALID;
    rowOut[lid] = INVALID;
    rowPos[lid] = 0u;
    rowLocal[lid] = INVALID;
    if (lid < R && i < P.querySeq) {
      let position = P.queryOffset + i;
      rowQ[lid] = ((P.slotOffset * P.groupSize) + qslot) * P.querySeq + i;
      rowOut[lid] = P.windowBase + qslot * P.querySeq + i;
      rowPos[lid] = position;
      var applies = P.localMode == 1u;
      if (P.localMode == 2u) {
        // 'uncovered': only when none of the query's clusters has a visible key.
        let limit = select(P.keySeq, position + 1u, P.causal == 1u);
        var routed = false;
        for (var word = 0u; word < words && !routed; word++) {
          var left = lookup[P.queryBitsAt + (qslot * P.querySeq + i) * words + word];
          while (left != 0u) {
            let c = word * 32u + countTrailingZeros(left);
            left = left & (left - 1u);
            let first = lookup[P.keyOffsetsAt + kslot * (P.clusters + 1u) + c];
            if (lookup[P.keyOffsetsAt + kslot * (P.clusters + 1u) + c + 1u] > first && keyLists[first] < limit) { routed = true; break; }
          }
        }
        applies = !routed;
      }
      if (applies) { rowLocal[lid] = max(position + 1u, P.localWindow) - P.localWindow; }
    }
  }
  if (lid == 0u) { wgSlot = qslot; }
  workgroupBarrier();`,
    keyAt: (s) => `select(bandStart + ${s} - sinkCount, ${s}, ${s} < sinkCount)`,
    allow: (i) => `windowAllow(4u * ty + ${i}u, keys)`,
    onPairs: 'atomicAdd(&pairCounts[wgSlot * (P.clusters + 1u) + P.clusters], pairs);',
    workgroupBytes: 4 * (64 + 1),
  };
}

/**
 * Query rows per window-part tile: the R ≤ `tileRows` with the fewest key tiles per query row, the
 * key list of R rows being the sinks plus a band of R + localWindow − 1 keys (with 4 sinks and a
 * 64-key window, 61 rows need two 64-key tiles where 64 rows need three).
 */
export function windowTileRows(tileRows: number, keyTile: number, sinkTokens: number, localWindow: number, localMode: number): number {
  const band = localMode === 0 ? 0 : localWindow;
  let best = tileRows;
  for (let rows = tileRows; rows >= 1; rows--) {
    const cost = (r: number) => Math.ceil((sinkTokens + (band > 0 ? r + band - 1 : 0)) / keyTile) / r;
    if (cost(rows) < cost(best) - 1e-12) best = rows;
  }
  return best;
}

/** The parameters and the lookup buffer (binding 1) of the kernels that fill the lookup's tile regions. */
function lookupKernelHeader(): string {
  return /* wgsl */ `struct Params {
${params}
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> lookup: array<u32>;
`;
}

/**
 * One workgroup per chunk: tile offset e = Σ_{e' < e} ⌈|Q_{e'}| / P.tileRows⌉ over the entries
 * e = qslot · C + c (entry slots · C holds the total), from the query lists' offsets, both in the
 * lookup buffer (binding 1).
 */
export function clusterTileOffsetsWgsl(): string {
  return /* wgsl */ `
${lookupKernelHeader()}const NT: u32 = ${CLUSTER_THREADS}u;
var<workgroup> partial: array<u32, ${CLUSTER_THREADS}>;

@compute @workgroup_size(${CLUSTER_THREADS})
fn main(@builtin(local_invocation_index) lid: u32) {
  let entries = P.slots * P.clusters;
  var before = 0u;
  for (var start = 0u; start < entries; start += NT) {
    let e = start + lid;
    var tiles = 0u;
    if (e < entries) {
      let at = (e / P.clusters) * (P.clusters + 1u) + e % P.clusters;
      tiles = (lookup[P.queryOffsetsAt + at + 1u] - lookup[P.queryOffsetsAt + at] + P.tileRows - 1u) / P.tileRows;
    }
    partial[lid] = tiles;
    workgroupBarrier();
${inclusiveScanU32('    ')}
    if (e < entries) { lookup[P.tileOffsetsAt + e] = before + partial[lid] - tiles; }
    let total = partial[NT - 1u];
    workgroupBarrier();
    before += total;
  }
  if (lid == 0u) { lookup[P.tileOffsetsAt + entries] = before; }
}
`;
}

/**
 * One thread per entry e = qslot · C + c: writes e at each of its tiles in `tileEntries` (from
 * `tileOffsets`, `clusterTileOffsetsWgsl`), so a cluster-part workgroup finds its entry with one
 * load instead of a binary search over the slots · C entries.
 */
export function clusterTileEntriesWgsl(): string {
  return /* wgsl */ `
${lookupKernelHeader()}
@compute @workgroup_size(${CLUSTER_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = (wid.x + wid.y * P.tilesX) * ${CLUSTER_THREADS}u + lid;
  if (e >= P.slots * P.clusters) { return; }
  for (var t = lookup[P.tileOffsetsAt + e]; t < lookup[P.tileOffsetsAt + e + 1u]; t++) { lookup[P.tileEntriesAt + t] = e; }
}
`;
}

/**
 * The merge: {@link MERGE_LANES} threads per query (one NVIDIA warp; 8 queries per workgroup),
 * each thread a strided share of the value columns; every thread walks the query's partials itself (window, then its clusters
 * ascending, each at the entry `clusterListWgsl(true)` recorded for the query's first
 * {@link LISTED_PARTS} clusters, else found by a binary search of the cluster's query list) and
 * combines them by lse online, then writes the row of `out` and `lse` (out 0 and lse −∞ when no
 * part has a key). Bindings: 1 partial out, 2 partial lse, 3 query lists, 4 the lookup buffer
 * (query list offsets, query cluster bits), 5 out, 6 lse, 7 the recorded entries
 * (`[qslot][i][LISTED_PARTS]`).
 */
export function clusterMergeWgsl(valueDim: number): string {
  return /* wgsl */ `
struct Params {
${params}
}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> partOut: array<f32>;
@group(0) @binding(2) var<storage, read> partLse: array<f32>;
@group(0) @binding(3) var<storage, read> queryLists: array<u32>;
@group(0) @binding(4) var<storage, read> lookup: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
@group(0) @binding(7) var<storage, read> parts: array<u32>;
const DV: u32 = ${valueDim}u;
const LISTED: u32 = ${LISTED_PARTS}u;
const COLS: u32 = ${Math.ceil(valueDim / MERGE_LANES)}u;
const NEG: f32 = -3.0e38;

@compute @workgroup_size(${CLUSTER_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = (wid.x + wid.y * P.tilesX) * ${CLUSTER_THREADS / MERGE_LANES}u + lid / ${MERGE_LANES}u;
  let t = lid % ${MERGE_LANES}u;
  if (row >= P.slots * P.querySeq) { return; }
  let qslot = row / P.querySeq;
  let i = row % P.querySeq;
  var m = NEG;
  var l = 0.0;
  var acc: array<f32, ${Math.ceil(valueDim / MERGE_LANES)}>;
  for (var x = 0u; x < COLS; x++) { acc[x] = 0.0; }
  let words = (P.clusters + 31u) / 32u;
  var c = 0u;
  var word = 0u;
  var left = 0u;
  var k = 0u;
  // Part −1 is the window; then the query's clusters in ascending order.
  var part = P.windowBase + row;
  loop {
    let value = partLse[part];
    if (value > NEG) {
      let mNew = max(m, value);
      let alpha = exp(m - mNew);
      let beta = exp(value - mNew);
      l = l * alpha + beta;
      for (var x = 0u; x < COLS; x++) {
        let col = t + ${MERGE_LANES}u * x;
        if (col < DV) { acc[x] = acc[x] * alpha + beta * partOut[part * DV + col]; }
      }
      m = mNew;
    }
    while (left == 0u && word < words) { left = lookup[P.queryBitsAt + row * words + word]; word++; }
    if (left == 0u) { break; }
    c = (word - 1u) * 32u + countTrailingZeros(left);
    left = left & (left - 1u);
    // This query's entry in the ascending list of cluster c: recorded for its first clusters,
    // else a binary search of the list.
    if (k < LISTED) {
      part = parts[row * LISTED + k];
    } else {
      var lo = lookup[P.queryOffsetsAt + qslot * (P.clusters + 1u) + c];
      var hi = lookup[P.queryOffsetsAt + qslot * (P.clusters + 1u) + c + 1u];
      while (hi - lo > 1u) {
        let mid = (lo + hi) / 2u;
        if (queryLists[mid] <= i) { lo = mid; } else { hi = mid; }
      }
      part = lo;
    }
    k++;
  }
  let dst = ((P.slotOffset * P.groupSize) + qslot) * P.querySeq + i;
  let inv = select(0.0, 1.0 / l, l > 0.0);
  for (var x = 0u; x < COLS; x++) {
    let col = t + ${MERGE_LANES}u * x;
    if (col < DV) { out[dst * DV + col] = acc[x] * inv; }
  }
  if (t == 0u) { lse[dst] = select(bitcast<f32>(P.pad0 | 0xff800000u), m + log(l), l > 0.0); }
}
`;
}
