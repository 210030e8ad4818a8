/**
 * The `routing` method's membership and selection in WGSL (spec routing.md §3; CPU:
 * `balanced-routing.ts`, `balanced-routing-attention.ts`, `row-parts.ts`), over per-chunk buffers:
 *
 *   similarities  sim[c][i] = x̂_i · μ_c                    cluster-major, per slot (`similarityTileWgsl`)
 *   balanced      I_c = top-w_i sim[c][i], ties → lower i   as bits, 32 positions to a word per cluster (`balancedTopWWgsl`)
 *   nearest       I_c ∪= { i : c ∈ top-r(i) }               set in the same bits (`simTopWgsl`)
 *   row bits      each query's clusters, 32 clusters to a word (`packRowFlagsWgsl`), for the
 *                 de-duplication below
 *   key lists     K_c = the flagged keys of c, ascending, from the bits   (`clusterCountWgsl`, `clusterOffsetsWgsl`, `clusterListWgsl`)
 *   query rows    row(i) = sinks ∪ local ∪ ⋃_{c : i ∈ I_c} (K_c ∩ [0, limit_i))   (`routedRowsWgsl`, count then write)
 *   row offsets   exclusive scan of the row sizes, per head then over heads    (`rowScanWgsl`, `headScanWgsl`)
 *
 * The top-w threshold is found by a radix select on the float's order-preserving u32 key (over the
 * candidates of the column's highest blocks, or four 8-bit histogram passes over the whole
 * column), so no sort and no S × S buffer. Row entries are written cluster by
 * cluster without repeats (a key is written by the first of the query's clusters that holds it,
 * unless the sinks or the local window already hold it), so a row is the CPU's union as a set, in
 * cluster order rather than ascending: the executor masks per key, and readers sort on readback.
 */
import { SIMILARITY_BLOCK } from './similarity-tile-wgsl.js';
import { inclusiveScanU32, orderKeyWgsl } from './wgsl-snippets.js';

/** Uniform parameter block of the routing selection kernels (unused fields are 0). */
export const ROUTING_PARAMS = [
  'slots', 'clusters', 'count', 'window',
  'tilesX', 'groupSize', 'r', 'keySeq',
  'querySeq', 'queryOffset', 'causal', 'sinkTokens',
  'localMode', 'localWindow', 'capacity', 'chunkIndex',
  'slotBase', 'pad0', 'pad1', 'pad2',
] as const;

/** Threads per workgroup of the routing selection kernels. */
export const ROUTING_THREADS = 256;

/** Most clusters of one query kept in registers for de-duplication (more fall back to scanning every cluster). */
export const ROUTED_CLUSTERS_IN_REGISTERS = 16;

const header = /* wgsl */ `
struct Params {
  slots: u32, clusters: u32, count: u32, window: u32,
  tilesX: u32, groupSize: u32, r: u32, keySeq: u32,
  querySeq: u32, queryOffset: u32, causal: u32, sinkTokens: u32,
  localMode: u32, localWindow: u32, capacity: u32, chunkIndex: u32,
  slotBase: u32, pad0: u32, pad1: u32, pad2: u32,
}
@group(0) @binding(0) var<uniform> P: Params;
const NT: u32 = ${ROUTING_THREADS}u;
`;

const entry = `@compute @workgroup_size(${ROUTING_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32)`;
const linear = 'let linear = wid.x + wid.y * P.tilesX;';
const threadId = `let id = (wid.x + wid.y * P.tilesX) * ${ROUTING_THREADS}u + lid;`;

/** Candidates the balanced top-w ranks in workgroup memory (more: the whole column is radix-selected). */
const TOP_W_CANDIDATES = 1024;
/** Blocks the balanced top-w lists in workgroup memory (more: the whole column). */
const TOP_W_BLOCKS = 512;

/**
 * A WGSL function `name(count, w, lid) -> vec3<u32>` over `count` keys `key(k)`: t = the key of
 * the w-th largest (1 ≤ w ≤ count), how many keys are above t and how many equal it. A radix select,
 * 8 bits per pass from the top: each pass histograms the digit of the keys that share the bits fixed
 * so far and fixes the digit where the count from the top reaches the rank still needed. Runs of
 * one digit are counted in a register and added once (the top digits of similarities are nearly
 * all equal, and 256 threads adding to one bin would serialise).
 */
function radixSelectWgsl(name: string, key: (k: string) => string): string {
  return /* wgsl */ `
fn ${name}(count: u32, w: u32, lid: u32) -> vec3<u32> {
  var t = 0u;
  var mask = 0u;
  var need = w;
  var above = 0u;
  var equal = 0u;
  for (var shift = 24i; shift >= 0i; shift -= 8i) {
    atomicStore(&histogram[lid], 0u);
    workgroupBarrier();
    var runDigit = 0xffffffffu;
    var run = 0u;
    for (var k = lid; k < count; k += NT) {
      let key = ${key('k')};
      if ((key & mask) != t) { continue; }
      let digit = (key >> u32(shift)) & 255u;
      if (digit != runDigit) {
        if (run > 0u) { atomicAdd(&histogram[runDigit], run); }
        runDigit = digit;
        run = 0u;
      }
      run++;
    }
    if (run > 0u) { atomicAdd(&histogram[runDigit], run); }
    workgroupBarrier();
    // Thread j holds bin 255 − j; an inclusive scan gives the count of digits ≥ 255 − j.
    let own = atomicLoad(&histogram[255u - lid]);
    partial[lid] = own;
    workgroupBarrier();
${inclusiveScanU32('    ')}
    let atLeast = partial[lid];
    if (atLeast >= need && atLeast - own < need) { found = vec3<u32>(255u - lid, atLeast - own, own); }
    workgroupBarrier();
    let pick = workgroupUniformLoad(&found);
    t = t | (pick.x << u32(shift));
    mask = mask | (255u << u32(shift));
    need -= pick.y;
    above += pick.y;
    equal = pick.z;
  }
  return vec3<u32>(t, above, equal);
}`;
}

/**
 * One workgroup per (slot, cluster) column of `P.count` similarities (binding 1): the column's
 * top-`P.window` positions (ties → lower position, like core's `selectTopK`) as bits, binding 3
 * `bits[(slot·C + c)·⌈P.count / 32⌉ + i / 32]` bit i % 32 (the column's words are zeroed first, so
 * the routed-rows and cluster kernels read the membership as C·S/8 bytes per slot, not C·S floats).
 * Binding 2 holds each 64-position block's largest key (`orderKey`), written by the similarity
 * tile (`[slot][C][⌈count / 64⌉]`).
 *
 * The w largest keys are at least t_b, the w-th largest block key (the w blocks at or above t_b
 * each hold a key ≥ t_b), so only positions ≥ t_b in blocks ≥ t_b can be selected: the kernel lists
 * those blocks, collects their candidates (about 300 of 64k at S = 64k, C = 256 on random
 * inputs) in workgroup memory, radix-selects the w-th largest among them (the column's own, as
 * every key above it is a candidate), ranks ties by position, and sets the selected candidates' bits. Reading about a quarter of the column once, where the radix select over
 * the whole column (the fallback: fewer blocks than w, more than ${TOP_W_BLOCKS} blocks or
 * ${TOP_W_CANDIDATES} candidates, as on strongly clustered columns) reads it five times.
 */
export function balancedTopWWgsl(): string {
  return /* wgsl */ `${header}
@group(0) @binding(1) var<storage, read> sim: array<f32>;
@group(0) @binding(2) var<storage, read> blockKeys: array<u32>;
@group(0) @binding(3) var<storage, read_write> bits: array<atomic<u32>>;
const BLOCK: u32 = ${SIMILARITY_BLOCK}u;
const CAP: u32 = ${TOP_W_CANDIDATES}u;
const BLOCK_CAP: u32 = ${TOP_W_BLOCKS}u;

var<workgroup> partial: array<u32, ${ROUTING_THREADS}>;
var<workgroup> histogram: array<atomic<u32>, 256>;
var<workgroup> found: vec3<u32>;
var<workgroup> blockList: array<u32, ${TOP_W_BLOCKS}>;
var<workgroup> candidates: array<u32, ${TOP_W_CANDIDATES}>;
var<workgroup> candidateKeys: array<u32, ${TOP_W_CANDIDATES}>;
var<workgroup> counter: atomic<u32>;
var<workgroup> broadcast: u32;
var<workgroup> wgColumn: u32;
var<workgroup> wgBlocks: u32;
${orderKeyWgsl}
${radixSelectWgsl('selectColumn', (k) => 'orderKey(sim[wgColumn * P.count + ' + k + '])')}
${radixSelectWgsl('selectBlocks', (k) => 'blockKeys[wgColumn * wgBlocks + ' + k + ']')}
${radixSelectWgsl('selectCandidates', (k) => 'candidateKeys[' + k + ']')}

fn setBit(bitBase: u32, i: u32) { atomicOr(&bits[bitBase + i / 32u], 1u << (i % 32u)); }

${entry} {
  ${linear}
  if (linear >= P.slots * P.clusters) { return; }
  let base = linear * P.count;
  let words = (P.count + 31u) / 32u;
  let bitBase = linear * words;
  let w = min(P.window, P.count);
  if (w >= P.count) {
    for (var j = lid; j < words; j += NT) { atomicStore(&bits[bitBase + j], select(0xffffffffu, (1u << (P.count % 32u)) - 1u, j == words - 1u && P.count % 32u != 0u)); }
    return;
  }
  for (var j = lid; j < words; j += NT) { atomicStore(&bits[bitBase + j], 0u); }
  storageBarrier();
  let blocks = (P.count + BLOCK - 1u) / BLOCK;
  if (lid == 0u) {
    wgColumn = linear;
    wgBlocks = blocks;
    atomicStore(&counter, 0u);
  }
  workgroupBarrier();
  if (blocks >= w && w <= BLOCK_CAP) {
    let tb = selectBlocks(blocks, w, lid).x;
    // The blocks at or above t_b, listed in order (at least w of them).
    var listed = 0u;
    for (var start = 0u; start < blocks; start += NT) {
      let b = start + lid;
      let keep = b < blocks && blockKeys[linear * blocks + b] >= tb;
      partial[lid] = select(0u, 1u, keep);
      workgroupBarrier();
${inclusiveScanU32('      ')}
      let at = listed + partial[lid] - select(0u, 1u, keep);
      if (keep && at < BLOCK_CAP) { blockList[at] = b; }
      listed += partial[NT - 1u];
      workgroupBarrier();
    }
    if (lid == 0u) { broadcast = listed; }
    let listedBlocks = workgroupUniformLoad(&broadcast);
    if (listedBlocks <= BLOCK_CAP) {
      // Their positions ≥ t_b, 4 blocks at a time (64 threads per block).
      for (var k = lid / BLOCK; k < listedBlocks; k += NT / BLOCK) {
        let i = blockList[k] * BLOCK + lid % BLOCK;
        if (i < P.count) {
          let key = orderKey(sim[base + i]);
          if (key >= tb) {
            let at = atomicAdd(&counter, 1u);
            if (at < CAP) {
              candidates[at] = i;
              candidateKeys[at] = key;
            }
          }
        }
      }
      workgroupBarrier();
      if (lid == 0u) { broadcast = atomicLoad(&counter); }
      let n = workgroupUniformLoad(&broadcast);
      if (n <= CAP) {
        let r = selectCandidates(n, w, lid);
        let t = r.x;
        let ties = w - r.y;
        for (var k = lid; k < n; k += NT) {
          let key = candidateKeys[k];
          var on = key > t;
          if (key == t) {
            // Every key equal to t is among the top w (the usual case: one such key), else the
            // ties at the lowest positions.
            var rank = 0u;
            if (r.z != ties) {
              for (var m = 0u; m < n; m++) { if (candidateKeys[m] == t && candidates[m] < candidates[k]) { rank++; } }
            }
            on = rank < ties;
          }
          if (on) { setBit(bitBase, candidates[k]); }
        }
        return;
      }
    }
  }
  let r = selectColumn(P.count, w, lid);
  let t = r.x;
  let ties = w - r.y;
  // Every key equal to t is among the top w (the usual case: one such key): no ranking of ties.
  if (r.z == ties) {
    for (var i = lid; i < P.count; i += NT) { if (orderKey(sim[base + i]) >= t) { setBit(bitBase, i); } }
    return;
  }
  // Mark in tiles of NT positions; ties go to the lowest positions (exclusive scan of tie flags).
  var tiesBefore = 0u;
  for (var start = 0u; start < P.count; start += NT) {
    let i = start + lid;
    var key = 0u;
    if (i < P.count) { key = orderKey(sim[base + i]); }
    let tie = i < P.count && key == t;
    partial[lid] = select(0u, 1u, tie);
    workgroupBarrier();
    // Inclusive Hillis–Steele scan.
${inclusiveScanU32('    ')}
    let rank = tiesBefore + partial[lid] - select(0u, 1u, tie);
    if (i < P.count && (key > t || (tie && rank < ties))) { setBit(bitBase, i); }
    let tileTies = partial[NT - 1u];
    workgroupBarrier();
    tiesBefore += tileTies;
  }
}
`;
}

/**
 * Transposes the cluster columns' bits (`balancedTopWWgsl`'s, `[slot][C][⌈count / 32⌉]`) into
 * ⌈C / 32⌉ words per row, `rowBits[(slot·count + i)·words + c / 32]` bit c % 32, one thread per
 * (slot, word, row): the routed-rows kernels walk a query's clusters from these instead of
 * testing all C columns.
 */
export function packRowFlagsWgsl(): string {
  return /* wgsl */ `${header}
@group(0) @binding(1) var<storage, read> columnBits: array<u32>;
@group(0) @binding(2) var<storage, read_write> rowBits: array<u32>;

${entry} {
  ${threadId}
  let words = (P.clusters + 31u) / 32u;
  if (id >= P.slots * words * P.count) { return; }
  let i = id % P.count;
  let word = (id / P.count) % words;
  let slot = id / (P.count * words);
  let columnWords = (P.count + 31u) / 32u;
  var value = 0u;
  for (var b = 0u; b < 32u; b++) {
    let c = word * 32u + b;
    if (c < P.clusters && ((columnBits[(slot * P.clusters + c) * columnWords + i / 32u] >> (i % 32u)) & 1u) == 1u) { value = value | (1u << b); }
  }
  rowBits[(slot * P.count + i) * words + word] = value;
}
`;
}

/**
 * One workgroup per (slot, cluster) column of bits (`balancedTopWWgsl`'s): the column's
 * member count. (Counting the float flags read C·S·4 bytes per slot a second time.)
 */
export function clusterCountWgsl(): string {
  return /* wgsl */ `${header}
@group(0) @binding(1) var<storage, read> bits: array<u32>;
@group(0) @binding(2) var<storage, read_write> counts: array<u32>;
var<workgroup> partial: array<u32, ${ROUTING_THREADS}>;

${entry} {
  ${linear}
  if (linear >= P.slots * P.clusters) { return; }
  let words = (P.count + 31u) / 32u;
  var n = 0u;
  for (var w = lid; w < words; w += NT) { n += countOneBits(bits[linear * words + w]); }
  partial[lid] = n;
  workgroupBarrier();
  for (var width = NT / 2u; width > 0u; width = width / 2u) {
    if (lid < width) { partial[lid] += partial[lid + width]; }
    workgroupBarrier();
  }
  if (lid == 0u) { counts[linear] = partial[0]; }
}
`;
}

/** Per slot (one thread): `offsets[slot·(C + 1) + c]` = slot·capacity + Σ_{c' < c} counts (lists of a slot share `P.capacity` entries). */
export function clusterOffsetsWgsl(): string {
  return /* wgsl */ `${header}
@group(0) @binding(1) var<storage, read> counts: array<u32>;
@group(0) @binding(2) var<storage, read_write> offsets: array<u32>;

${entry} {
  ${threadId}
  if (id >= P.slots) { return; }
  var at = id * P.capacity;
  for (var c = 0u; c < P.clusters; c++) {
    offsets[id * (P.clusters + 1u) + c] = at;
    at += counts[id * P.clusters + c];
  }
  offsets[id * (P.clusters + 1u) + P.clusters] = at;
}
`;
}

/** A query's first clusters (ascending) whose entries in their query lists `clusterListWgsl(true)` records. */
export const LISTED_PARTS = 4;

/**
 * One workgroup per (slot, cluster) column of bits: writes the members' positions
 * ascending at the cluster's offset, 32 positions per thread and 8 192 per scan (with one scan per
 * 256 positions over the float flags, the lists took 12.4 ms at S = 64k, C = 256, 32 heads on the
 * H100; 7–9 ms with this kernel and `clusterCountWgsl` on the bits). With `parts` (the query
 * lists), each member i of cluster c also records its list entry at
 * `parts[(slot·count + i)·LISTED_PARTS + k]`, k = c's rank among i's clusters (from the row bits,
 * binding 4, `packRowFlagsWgsl`'s), for k < {@link LISTED_PARTS}: where the merge finds its partials.
 */
export function clusterListWgsl(parts = false): string {
  return /* wgsl */ `${header}
@group(0) @binding(1) var<storage, read> bits: array<u32>;
@group(0) @binding(2) var<storage, read> offsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> lists: array<u32>;${
    parts
      ? `
@group(0) @binding(4) var<storage, read> rowBits: array<u32>;
@group(0) @binding(5) var<storage, read_write> parts: array<u32>;

// How many of row i's clusters come before c.
fn clusterRank(slot: u32, i: u32, c: u32) -> u32 {
  let base = (slot * P.count + i) * ((P.clusters + 31u) / 32u);
  var k = 0u;
  for (var w = 0u; w < c / 32u; w++) { k += countOneBits(rowBits[base + w]); }
  return k + countOneBits(rowBits[base + c / 32u] & ((1u << (c % 32u)) - 1u));
}`
      : ''
  }
var<workgroup> partial: array<u32, ${ROUTING_THREADS}>;

${entry} {
  ${linear}
  if (linear >= P.slots * P.clusters) { return; }
  let slot = linear / P.clusters;
  let c = linear % P.clusters;
  let words = (P.count + 31u) / 32u;
  var at = offsets[slot * (P.clusters + 1u) + c];
  for (var start = 0u; start < words; start += NT) {
    let w = start + lid;
    var word = 0u;
    if (w < words) { word = bits[linear * words + w]; }
    let own = countOneBits(word);
    partial[lid] = own;
    workgroupBarrier();
${inclusiveScanU32('    ')}
    var out = at + partial[lid] - own;
    while (word != 0u) {
      let i = w * 32u + firstTrailingBit(word);
      lists[out] = i;${
        parts
          ? `
      let k = clusterRank(slot, i, c);
      if (k < ${LISTED_PARTS}u) { parts[(slot * P.count + i) * ${LISTED_PARTS}u + k] = out; }`
          : ''
      }
      out++;
      word = word & (word - 1u);
    }
    let tile = partial[NT - 1u];
    workgroupBarrier();
    at += tile;
  }
}
`;
}

/**
 * One thread per query row (query slot, i): the row's keys — sinks, local window (per `P.localMode`:
 * 0 never, 1 always, 2 only when no routed key is visible) and the visible keys of each of its
 * clusters, without repeats. `write` = false counts them into `sizes[row]`; true writes them at
 * `rowOffsets[row] + headBase[query slot]` and the row's `bounds`.
 */
export function routedRowsWgsl(write: boolean): string {
  const M = ROUTED_CLUSTERS_IN_REGISTERS;
  return /* wgsl */ `${header}
const M: u32 = ${M}u;
@group(0) @binding(1) var<storage, read> queryBits: array<u32>;
@group(0) @binding(2) var<storage, read> keyBits: array<u32>;
@group(0) @binding(3) var<storage, read> lists: array<u32>;
@group(0) @binding(4) var<storage, read> listOffsets: array<u32>;
${write
    ? `@group(0) @binding(5) var<storage, read> rowOffsets: array<u32>;
@group(0) @binding(6) var<storage, read> headBase: array<u32>;
@group(0) @binding(7) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(8) var<storage, read_write> indices: array<u32>;`
    : '@group(0) @binding(5) var<storage, read_write> sizes: array<u32>;'}

// Is key j in the cluster column \`column\` (slot·C + c)? (\`balancedTopWWgsl\`'s bits)
fn hasKey(column: u32, j: u32) -> bool {
  return ((keyBits[column * ((P.keySeq + 31u) / 32u) + j / 32u] >> (j % 32u)) & 1u) == 1u;
}

// Is query row \`row\` in cluster c? (\`packRowFlagsWgsl\`'s bits, one run of ⌈C / 32⌉ words per row)
fn inCluster(row: u32, c: u32) -> bool {
  return ((queryBits[row * ((P.clusters + 31u) / 32u) + c / 32u] >> (c % 32u)) & 1u) == 1u;
}

${entry} {
  ${threadId}
  if (id >= P.slots * P.querySeq) { return; }
  let qslot = id / P.querySeq;
  let i = id % P.querySeq;
  let kslot = qslot / P.groupSize;
  let position = P.queryOffset + i;
  let limit = select(P.keySeq, position + 1u, P.causal == 1u);
  var mine: array<u32, ${M}>;
  var n = 0u;
  var routed = 0u;
  let words = (P.clusters + 31u) / 32u;
  for (var word = 0u; word < words; word++) {
    var left = queryBits[id * words + word];
    while (left != 0u) {
      let c = word * 32u + countTrailingZeros(left);
      left = left & (left - 1u);
      if (n < M) { mine[n] = c; }
      n++;
      let first = listOffsets[kslot * (P.clusters + 1u) + c];
      if (listOffsets[kslot * (P.clusters + 1u) + c + 1u] > first && lists[first] < limit) { routed++; }
    }
  }
  let sinkEnd = min(P.sinkTokens, limit);
  var localStart = 0u;
  var localEnd = 0u;
  if (P.localMode == 1u || (P.localMode == 2u && routed == 0u)) {
    localStart = max(position + 1u, P.localWindow) - P.localWindow;
    localEnd = min(position + 1u, P.keySeq);
  }
${write ? `  var at = rowOffsets[id] + headBase[qslot];
  let rowStart = at;
  for (var j = 0u; j < sinkEnd; j++) { indices[at] = j; at++; }
  for (var j = max(localStart, sinkEnd); j < localEnd; j++) { indices[at] = j; at++; }` : `  var total = sinkEnd + (localEnd - min(localEnd, max(localStart, sinkEnd)));`}
  var seen = 0u;
  // The query's clusters in ascending order (from its bits).
  var word = 0u;
  var left = 0u;
  for (var visited = 0u; visited < n; visited++) {
    while (left == 0u) { left = queryBits[id * words + word]; word++; }
    let c = (word - 1u) * 32u + countTrailingZeros(left);
    left = left & (left - 1u);
    let first = listOffsets[kslot * (P.clusters + 1u) + c];
    let last = listOffsets[kslot * (P.clusters + 1u) + c + 1u];
    for (var m = first; m < last; m++) {
      let j = lists[m];
      if (j >= limit) { break; }
      if (j < sinkEnd || (j >= localStart && j < localEnd)) { continue; }
      // Written already by an earlier cluster of this query?
      var earlier = false;
      if (n <= M) {
        for (var t = 0u; t < seen; t++) {
          if (hasKey(kslot * P.clusters + mine[t], j)) { earlier = true; break; }
        }
      } else {
        for (var e = 0u; e < c; e++) {
          if (inCluster(id, e) && hasKey(kslot * P.clusters + e, j)) { earlier = true; break; }
        }
      }
      if (earlier) { continue; }
${write ? '      indices[at] = j;\n      at++;' : '      total++;'}
    }
    seen++;
  }
${write ? '  bounds[2u * id] = rowStart;\n  bounds[2u * id + 1u] = at;' : '  sizes[id] = total;'}
}
`;
}

/** One workgroup per query slot: exclusive scan of its `P.querySeq` row sizes into `rowOffsets`, its total into `headTotals`. */
export function rowScanWgsl(): string {
  return /* wgsl */ `${header}
@group(0) @binding(1) var<storage, read> sizes: array<u32>;
@group(0) @binding(2) var<storage, read_write> rowOffsets: array<u32>;
@group(0) @binding(3) var<storage, read_write> headTotals: array<u32>;
var<workgroup> partial: array<u32, ${ROUTING_THREADS}>;

${entry} {
  ${linear}
  if (linear >= P.slots) { return; }
  var before = 0u;
  for (var start = 0u; start < P.querySeq; start += NT) {
    let i = start + lid;
    var size = 0u;
    if (i < P.querySeq) { size = sizes[linear * P.querySeq + i]; }
    partial[lid] = size;
    workgroupBarrier();
${inclusiveScanU32('    ')}
    if (i < P.querySeq) { rowOffsets[linear * P.querySeq + i] = before + partial[lid] - size; }
    let tile = partial[NT - 1u];
    workgroupBarrier();
    before += tile;
  }
  if (lid == 0u) { headTotals[linear] = before; }
}
`;
}

/** One thread: `headBase` = exclusive scan of the chunk's head totals; `totals[P.chunkIndex]` = the chunk's entries. */
export function headScanWgsl(): string {
  return /* wgsl */ `${header}
@group(0) @binding(1) var<storage, read> headTotals: array<u32>;
@group(0) @binding(2) var<storage, read_write> headBase: array<u32>;
@group(0) @binding(3) var<storage, read_write> totals: array<u32>;

${entry} {
  ${threadId}
  if (id != 0u) { return; }
  var at = 0u;
  for (var s = 0u; s < P.slots; s++) {
    headBase[s] = at;
    at += headTotals[s];
  }
  totals[P.chunkIndex] = at;
}
`;
}
