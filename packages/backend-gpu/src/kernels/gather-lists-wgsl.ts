/**
 * Key-block-major execution of a block selection: the passes around the flash kernel's `gather`
 * mode. For a window of selection rows `[rowStart, rowStart + rows)` of one chunk:
 *
 *   count    n[L] += 1 for every (row, entry) whose block is b, L = (slot(row) − slotFirst) · blocks + b
 *   scan     tiles[L] = Σ_{L' < L} ⌈n[L'] / itemsPerTile⌉,  start[L] = Σ_{L' < L} n[L']   (one workgroup)
 *   map      list[t] = L for the tiles t of every list L (so a workgroup finds its list in one read)
 *   scatter  items[start[L] + atomicAdd(cursor[L], 1)] = (row − rowStart) · stride + entry
 *   sort     each list of at most 2048 items ascending (one workgroup, bitonic), so a tile holds
 *            consecutive queries and stops at its last query's position under causal masking
 *   attend   flash kernel, `gather` mode: one workgroup per tile of a list → partial (out, lse) per item
 *   merge    out_i = Σ_e e^{lse_e − LSE} out_e,  LSE = log Σ_e e^{lse_e}   over the row's entries
 *
 * The order of items inside a list depends on the atomics, but every query vector's partial over
 * a block is computed by its own tile row, independently of its neighbours, and the merge runs
 * over the row's entries in selection order: results do not depend on the order.
 */
import { memoKernel } from './memo-kernel.js';

/**
 * WGSL statements that map a workgroup to its tile of a list (the list passes' `listMeta`): the
 * workgroup's list as `name` (it returns, workgroup-uniformly, past the last tile), its first item
 * `first` and its item `count` (≤ `P.itemsPerTile`). The including kernel declares `linear`, `lid`,
 * `INVALID`, `var<workgroup> wgList: u32`, `listMeta` and the uniform fields `lists` and
 * `itemsPerTile`. Shared by the attention kernel's `gather` mode and families' block-major kernels.
 */
export function listTileWgsl(name: string): string {
  return /* wgsl */ `
  if (lid == 0u) {
    // The tile → list map follows the two prefix arrays; workgroups past the last tile idle.
    wgList = select(INVALID, listMeta[2u * P.lists + 2u + linear], linear < listMeta[P.lists]);
  }
  let ${name} = workgroupUniformLoad(&wgList);
  if (${name} == INVALID) { return; }
  let first = listMeta[P.lists + 1u + ${name}] + (linear - listMeta[${name}]) * P.itemsPerTile;
  let count = min(P.itemsPerTile, listMeta[P.lists + 2u + ${name}] - first);`;
}

/** Threads per workgroup of the count, scan and scatter passes. */
export const GATHER_THREADS = 256;

/** Uniform parameter block shared by the count, scan, scatter and merge passes (16 × 4 bytes). */
export const GATHER_LIST_PARAMS = [
  'rowStart', 'rows', 'stride', 'selRows',
  'slotFirst', 'blocks', 'lists', 'itemsPerTile',
  'vectors', 'queryBlockSize', 'querySeq', 'groupSize',
  'scopeKv', 'tilesX', 'spread', 'pad0',
] as const;
// pad0 must stay 0: the merge builds −∞ for an empty row as bitcast(pad0 | 0xff800000) at run
// time, because WGSL rejects an infinite value in a constant expression.

const PARAMS_STRUCT = /* wgsl */ `
struct Params {
  rowStart: u32, rows: u32, stride: u32, selRows: u32,
  slotFirst: u32, blocks: u32, lists: u32, itemsPerTile: u32,
  vectors: u32, queryBlockSize: u32, querySeq: u32, groupSize: u32,
  scopeKv: u32, tilesX: u32, spread: u32, pad0: u32,
}
@group(0) @binding(0) var<uniform> P: Params;`;

/**
 * Count (`scatter: false`) or scatter (`scatter: true`) pass: one thread per (row, entry) of the
 * window. Bindings: 0 params, 1 bounds, 2 indices (the selection), 3 counts or cursors (atomic),
 * 4 list meta (scatter only), 5 items (scatter only).
 */
export const gatherListsWgsl = memoKernel(function gatherListsWgsl(o: { scatter: boolean }): string {
  return /* wgsl */ `
${PARAMS_STRUCT}
@group(0) @binding(1) var<storage, read> bounds: array<u32>;
@group(0) @binding(2) var<storage, read> indices: array<u32>;
@group(0) @binding(3) var<storage, read_write> counter: array<atomic<u32>>;
${o.scatter ? `@group(0) @binding(4) var<storage, read> listMeta: array<u32>;
@group(0) @binding(5) var<storage, read_write> items: array<u32>;` : ''}

@compute @workgroup_size(${GATHER_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let thread = (wid.x + wid.y * P.tilesX) * ${GATHER_THREADS}u + lid;
  if (thread >= P.rows * P.stride) { return; }
  // Neighbouring threads take rows \`spread\` apart (a permutation: spread is coprime with rows),
  // so a warp's atomics hit different lists instead of one hot counter (consecutive rows
  // mostly select the same blocks).
  let rowLocal = ((thread / P.stride) * P.spread) % P.rows;
  let entry = thread % P.stride;
  let id = rowLocal * P.stride + entry;
  let row = P.rowStart + rowLocal;
  let start = bounds[2u * row];
  if (start + entry >= bounds[2u * row + 1u]) { return; }
  let list = (row / P.selRows - P.slotFirst) * P.blocks + indices[start + entry];
${
  o.scatter
    ? `  let at = atomicAdd(&counter[list], 1u);
  items[listMeta[P.lists + 1u + list] + at] = id;`
    : `  atomicAdd(&counter[list], 1u);`
}
}
`;
});

/**
 * Scan pass, one workgroup: each thread sums a contiguous run of lists, the workgroup scans the
 * run totals, then each thread writes its run's exclusive prefixes. Bindings: 0 params, 1 counts,
 * 2 list meta (`[tile prefix (lists + 1) | item prefix (lists + 1)]`).
 */
export const gatherScanWgsl = memoKernel(function gatherScanWgsl(): string {
  const NT = GATHER_THREADS;
  return /* wgsl */ `
${PARAMS_STRUCT}
@group(0) @binding(1) var<storage, read> counts: array<u32>;
@group(0) @binding(2) var<storage, read_write> listMeta: array<u32>;

var<workgroup> tileSums: array<u32, ${NT}>;
var<workgroup> itemSums: array<u32, ${NT}>;

@compute @workgroup_size(${NT})
fn main(@builtin(local_invocation_index) lid: u32) {
  let run = (P.lists + ${NT - 1}u) / ${NT}u;
  let first = min(P.lists, lid * run);
  let last = min(P.lists, first + run);
  var tiles = 0u;
  var itemCount = 0u;
  for (var l = first; l < last; l++) {
    let n = counts[l];
    tiles += (n + P.itemsPerTile - 1u) / P.itemsPerTile;
    itemCount += n;
  }
  tileSums[lid] = tiles;
  itemSums[lid] = itemCount;
  // Inclusive Hillis–Steele scan of the run totals.
  for (var offset = 1u; offset < ${NT}u; offset *= 2u) {
    workgroupBarrier();
    let t = select(0u, tileSums[lid - offset], lid >= offset);
    let c = select(0u, itemSums[lid - offset], lid >= offset);
    workgroupBarrier();
    tileSums[lid] += t;
    itemSums[lid] += c;
  }
  workgroupBarrier();
  var tileAt = tileSums[lid] - tiles;
  var itemAt = itemSums[lid] - itemCount;
  for (var l = first; l < last; l++) {
    let n = counts[l];
    listMeta[l] = tileAt;
    listMeta[P.lists + 1u + l] = itemAt;
    tileAt += (n + P.itemsPerTile - 1u) / P.itemsPerTile;
    itemAt += n;
  }
  if (lid == ${NT - 1}u) {
    listMeta[P.lists] = tileSums[lid];
    listMeta[2u * P.lists + 1u] = itemSums[lid];
  }
}
`;
});

/**
 * Map pass: one thread per list writes the list's id at each of its tiles, after the two prefix
 * arrays of the list meta. Bindings: 0 params, 1 list meta (`[tiles | items | tile → list]`).
 */
export const gatherTileMapWgsl = memoKernel(function gatherTileMapWgsl(): string {
  return /* wgsl */ `
${PARAMS_STRUCT}
@group(0) @binding(1) var<storage, read_write> listMeta: array<u32>;

@compute @workgroup_size(${GATHER_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let list = (wid.x + wid.y * P.tilesX) * ${GATHER_THREADS}u + lid;
  if (list >= P.lists) { return; }
  let base = 2u * P.lists + 2u;
  for (var t = listMeta[list]; t < listMeta[list + 1u]; t++) { listMeta[base + t] = list; }
}
`;
});

/** Longest list the sort pass orders (longer lists stay in atomic order: still exact, less causal skipping). */
export const GATHER_SORT_CAPACITY = 2048;

/**
 * Sort pass: one workgroup per list sorts its items ascending (bitonic, in workgroup memory).
 * Items of one list come from distinct rows, so ascending items are ascending query positions.
 * Bindings: 0 params, 1 list meta, 2 items.
 */
export const gatherSortWgsl = memoKernel(function gatherSortWgsl(): string {
  const NT = GATHER_THREADS;
  const CAP = GATHER_SORT_CAPACITY;
  return /* wgsl */ `
${PARAMS_STRUCT}
@group(0) @binding(1) var<storage, read> listMeta: array<u32>;
@group(0) @binding(2) var<storage, read_write> items: array<u32>;

var<workgroup> keys: array<u32, ${CAP}>;
var<workgroup> wgCount: u32;

@compute @workgroup_size(${NT})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let list = wid.x + wid.y * P.tilesX;
  if (list >= P.lists) { return; }
  let first = listMeta[P.lists + 1u + list];
  if (lid == 0u) { wgCount = listMeta[P.lists + 2u + list] - first; }
  let n = workgroupUniformLoad(&wgCount);
  if (n <= 1u || n > ${CAP}u) { return; }
  var m = 2u;
  while (m < n) { m *= 2u; }
  for (var i = lid; i < m; i += ${NT}u) { keys[i] = select(0xffffffffu, items[first + i], i < n); }
  workgroupBarrier();
  for (var k = 2u; k <= m; k *= 2u) {
    for (var j = k / 2u; j > 0u; j /= 2u) {
      for (var i = lid; i < m; i += ${NT}u) {
        let other = i ^ j;
        if (other > i) {
          let a = keys[i];
          let b = keys[other];
          if ((a > b) == ((i & k) == 0u)) {
            keys[i] = b;
            keys[other] = a;
          }
        }
      }
      workgroupBarrier();
    }
  }
  for (var i = lid; i < n; i += ${NT}u) { items[first + i] = keys[i]; }
}
`;
});

/** Threads per workgroup of the merge pass. */
export const GATHER_MERGE_THREADS = 256;

/** Threads of the merge pass per query vector (each takes every 32nd vec4, or channel, of the output). */
export const GATHER_MERGE_LANES = 32;

/** Query vectors one merge workgroup combines. */
export const GATHER_MERGE_VECTORS = GATHER_MERGE_THREADS / GATHER_MERGE_LANES;

/**
 * Merge pass: {@link GATHER_MERGE_LANES} threads per query vector of the window's rows (so
 * {@link GATHER_MERGE_VECTORS} vectors a workgroup), which combine the partials of the row's
 * entries in selection order, vec4 loads and stores when the value dim is a multiple of 4 (each
 * thread then holds 4 channels of every 128). Bindings: 0 params, 1 bounds, 2 partial out,
 * 3 partial lse, 4 out, 5 lse (the call's outputs). (History on the H100 at 64k MHA: one
 * 64-thread workgroup per vector with scalar loads took MoBA's merge of three partials 2.8 ms.)
 */
export const gatherMergeWgsl = memoKernel(function gatherMergeWgsl(valueDim: number): string {
  const vec = valueDim % 4 === 0;
  const element = vec ? 'vec4<f32>' : 'f32';
  const width = vec ? valueDim / 4 : valueDim;
  return /* wgsl */ `
${PARAMS_STRUCT}
const W: u32 = ${width}u;
const LANES: u32 = ${GATHER_MERGE_LANES}u;
@group(0) @binding(1) var<storage, read> bounds: array<u32>;
@group(0) @binding(2) var<storage, read> partOut: array<${element}>;
@group(0) @binding(3) var<storage, read> partLse: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<${element}>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

fn weight(l: f32, big: f32) -> f32 {
  return select(exp(l - big), 0.0, l < -1.0e38);
}

@compute @workgroup_size(${GATHER_MERGE_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let vector = (wid.x + wid.y * P.tilesX) * ${GATHER_MERGE_VECTORS}u + lid / LANES;
  let lane = lid % LANES;
  if (vector >= P.rows * P.vectors) { return; }
  let rowLocal = vector / P.vectors;
  let t = vector % P.vectors;
  let row = P.rowStart + rowLocal;
  let slot = row / P.selRows;
  let i = (row % P.selRows) * P.queryBlockSize + t % P.queryBlockSize;
  if (i >= P.querySeq) { return; }
  let querySlot = select(slot, slot * P.groupSize + t / P.queryBlockSize, P.scopeKv == 1u);
  let dst = querySlot * P.querySeq + i;
  let entries = bounds[2u * row + 1u] - bounds[2u * row];
  let base = rowLocal * P.stride;
  // A block with no visible key for this query left lse = −∞ (weight 0); no ∞ arithmetic here.
  var big = -3.0e38;
  for (var e = 0u; e < entries; e++) { big = max(big, partLse[(base + e) * P.vectors + t]); }
  var total = 0.0;
  for (var e = 0u; e < entries; e++) { total += weight(partLse[(base + e) * P.vectors + t], big); }
  let inv = select(0.0, 1.0 / total, total > 0.0);
  for (var c = lane; c < W; c += LANES) {
    var acc = ${element}(0.0);
    for (var e = 0u; e < entries; e++) {
      let at = (base + e) * P.vectors + t;
      acc = fma(partOut[at * W + c], ${element}(weight(partLse[at], big)), acc);
    }
    out[dst * W + c] = acc * inv;
  }
  if (lane == 0u) { lse[dst] = select(bitcast<f32>(P.pad0 | 0xff800000u), big + log(total), total > 0.0); }
}
`;
});
