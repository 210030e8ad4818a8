/**
 * Kernel: NSA's top-n block selection on the GPU (arXiv:2502.11089 Eq. 10 and the forced blocks,
 * spec §3.3 and §3.7; the WGSL twin of `NsaBlockSelector.select` + `unionWithWindow`), over the
 * block importance the tiled scoring kernel (`nsa-score-tile-wgsl.ts`) left for a row range:
 *
 *   importance       P_t[j] = importance[slot][j][row of the range] if block j's first window is visible to t, else 0
 *   forced           P_t[0] = P_t[IC − f] = +∞ for f < forceLocal                 (IC = floor(t / l′))
 *   selection        I_t = top-n'_{j ≤ IC} P_t[j],  n' = min(n, IC + 1), ties toward the later block
 *   union            I_t ∪ { floor(max(0, t − w + 1) / l′) … IC }                 (combine: 'union')
 *
 * One thread per selection row (KV slot, query t) of the range; consecutive threads are
 * consecutive queries, so the block-major importance (`[slot][block][row]`) is read coalesced. The
 * forced blocks are taken first: they all carry +∞ on the CPU, so among them the CPU's order
 * (score descending, index descending) is plain index descending — the local blocks IC, IC − 1, …,
 * then block 0. If they fill n', those are the picks. Otherwise the thread walks the remaining
 * blocks in ascending order keeping the best n' − forced in registers, ordered (score descending,
 * index descending) like the CPU's `TopKSelector`: a later block with an equal score ranks above
 * a kept one (the insertion passes over equal keys). The picks are sorted ascending and written,
 * merged with the window's blocks under 'union', as one CSR row at a fixed stride.
 *
 * Cost per row: one pass over its IC + 1 block scores (plus ≈ n'·ln(IC/n') insertions of at most
 * n' moves), no barriers; the earlier kernel ran one workgroup per row with a 7-level arg-max
 * reduction per pick (2M workgroups × 16 picks at S = 64k, 32 KV heads).
 */
import { memoKernel } from '@sparse-attn/backend-gpu';
import { VISIBLE_WINDOWS_WGSL } from './nsa-score-tile-wgsl.js';
import { RADIX_TOP_K_WORKGROUP, radixTopKWgsl, SORTABLE_WGSL } from './radix-top-k-wgsl.js';

/** Uniform parameter block of the NSA selection kernel (u32 fields). */
export const NSA_SELECT_PARAMS = [
  'querySeq', 'queryOffset', 'slots', 'tilesX',
  'rowStart', 'rangeRows', 'blocks', 'windows',
  'compressionBlock', 'compressionStride', 'selectionBlock', 'selectedBlocks',
  'window', 'forceInitial', 'forceLocal', 'stride',
  'unionWindow', 'pad0', 'pad1', 'pad2',
] as const;

/** Threads per workgroup of the NSA selection kernel (one selection row each). */
export const NSA_SELECT_THREADS = 64;

/** Compile-time shape of the NSA selection kernel. */
export interface NsaSelectKernelOptions {
  /** Selection blocks of the call, ceil(keySeq / l′). */
  readonly maxBlocks: number;
  /** Most top-n picks of a row, min(n, maxBlocks): the size of the per-thread pick arrays. */
  readonly maxPicks: number;
  /**
   * The scores are the scoring kernel's logits (its `logits` option) rather than probabilities:
   * a block whose first window is not visible then scores the lowest value, not 0.
   */
  readonly logits?: boolean;
}

const SELECT_BINDINGS = /* wgsl */ `
struct Params {
  querySeq: u32, queryOffset: u32, slots: u32, tilesX: u32,
  rowStart: u32, rangeRows: u32, blocks: u32, windows: u32,
  compressionBlock: u32, compressionStride: u32, selectionBlock: u32, selectedBlocks: u32,
  window: u32, forceInitial: u32, forceLocal: u32, stride: u32,
  unionWindow: u32, pad0: u32, pad1: u32, pad2: u32,
}

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> importance: array<f32>;
@group(0) @binding(2) var<storage, read_write> bounds: array<u32>;
@group(0) @binding(3) var<storage, read_write> indices: array<u32>;

${VISIBLE_WINDOWS_WGSL}
`;

/**
 * Statements shared by both selection kernels: the row's geometry (`row`, `t`, `current`, `n`,
 * `nc`) and its forced blocks, index descending, in `picked[0..m)`; `low..localLow` are the
 * blocks left to rank and `room` the picks left for them.
 */
const ROW_START = /* wgsl */ `
  let i = P.rowStart + rangeRow;
  let row = kvSlot * P.querySeq + i;
  let t = P.queryOffset + i;
  let lp = P.selectionBlock;
  let current = t / lp;
  let n = min(min(P.selectedBlocks, current + 1u), MP);
  let nc = visible(t);
  var picked: array<u32, MP>;
  // Forced blocks, index descending: the local run [localLow, IC], then block 0.
  var localLow = current + 1u;
  if (P.forceLocal > 0u) { localLow = current + 1u - min(P.forceLocal, current + 1u); }
  var m = 0u;
  for (var j = current + 1u; j > localLow && m < n; j--) { picked[m] = j - 1u; m++; }
  var low = 0u;
  if (P.forceInitial != 0u && localLow > 0u) {
    low = 1u;
    if (m < n) { picked[m] = 0u; m++; }
  }
  let room = n - m;
  let base = kvSlot * P.blocks * P.rangeRows + rangeRow;`;

/** The score of block j for the row: its importance when its first window is visible, else 0. */
const BLOCK_SCORE = /* wgsl */ `
fn firstWindow(j: u32) -> u32 {
  if (j * P.selectionBlock >= P.compressionBlock) { return (j * P.selectionBlock - P.compressionBlock) / P.compressionStride + 1u; }
  return 0u;
}`;

/** Statements shared by both kernels: `picked[0..count)` sorted ascending and written as the row, merged with the window's blocks under 'union'. */
const WRITE_ROW = /* wgsl */ `
  // Ascending block order for the CSR row.
  for (var a = 1u; a < count; a++) {
    let x = picked[a];
    var b = a;
    while (b > 0u && picked[b - 1u] > x) { picked[b] = picked[b - 1u]; b--; }
    picked[b] = x;
  }
  let start = row * P.stride;
  var e = 0u;
  if (P.unionWindow != 0u && P.window > 0u) {
    var firstWindowBlock = 0u;
    if (t + 1u > P.window) { firstWindowBlock = (t + 1u - P.window) / lp; }
    for (var a = 0u; a < count && picked[a] < firstWindowBlock; a++) { indices[start + e] = picked[a]; e++; }
    for (var j = firstWindowBlock; j <= current; j++) { indices[start + e] = j; e++; }
  } else {
    for (var a = 0u; a < count; a++) { indices[start + e] = picked[a]; e++; }
  }
  bounds[2u * row] = start;
  bounds[2u * row + 1u] = start + e;`;

/** Generates the NSA selection kernel. */
export const nsaSelectWgsl = memoKernel(function nsaSelectWgsl(o: NsaSelectKernelOptions): string {
  const picks = Math.max(1, o.maxPicks);
  return /* wgsl */ `
const MP: u32 = ${picks}u;
${SELECT_BINDINGS}${BLOCK_SCORE}

@compute @workgroup_size(${NSA_SELECT_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = (wid.x + wid.y * P.tilesX) * ${NSA_SELECT_THREADS}u + lid;
  if (linear >= P.slots * P.rangeRows) { return; }
  // Rows are (KV slot, query) like core's Selection with headScope 'kv'.
  let kvSlot = linear / P.rangeRows;
  let rangeRow = linear % P.rangeRows;
${ROW_START}
${o.maxPicks <= REGISTER_PICKS ? registerRanking(picks, o.logits === true) : loopRanking(o.logits === true)}
  let count = m + kept;
${WRITE_ROW}
}
`;
});

/** Score of an empty register slot: below every score a block can get. */
const EMPTY_SLOT = '-3.4e38';

/**
 * WGSL opening the walk over blocks [low, localLow) four at a time: `batch` gets the four blocks'
 * scores before any is ranked (four independent loads in flight per step of the serial walk). A
 * block whose first window is hidden scores 0 as a probability, the lowest value as a logit.
 */
function batchLoad(logits: boolean): string {
  return /* wgsl */ `    for (var j0 = low; j0 < localLow; j0 += 4u) {
      var batch = vec4<f32>(${logits ? '-3.0e38' : '0.0'});
      for (var c = 0u; c < 4u; c++) {
        let j = j0 + c;
        if (j < localLow && firstWindow(j) < nc) { batch[c] = importance[base + j * P.rangeRows]; }
      }`;
}

/**
 * Most picks ranked in registers ({@link registerRanking}); rows of more picks take the loop over
 * a private array ({@link loopRanking}).
 */
export const REGISTER_PICKS = 16;

/**
 * The ranking of blocks [low, localLow) into `kept` picks at `picked[m …]`, with the best `K` kept
 * in registers as (score, block) pairs in slots written out with constant indices: a private array
 * indexed by a loop variable lives in local memory, and its data-dependent insertions diverge a
 * warp's threads (32 ms for 2M rows of 1 024 blocks at 64k on the H100). Every block is inserted at
 * the position after the kept scores strictly greater than its own (an equal, later block ranks
 * above: the CPU's order), shifting the slots below it down by one; all K slots are updated with
 * selects, no branch but the one that skips a block below the last slot. K = maxPicks ≥ room, so
 * the first `room` slots are the best `room` blocks. Empty slots hold {@link EMPTY_SLOT}, below
 * every score (probabilities ≥ 0; logits and hidden blocks ≥ −3·10³⁸).
 */
function registerRanking(k: number, logits: boolean): string {
  const slots = Array.from({ length: k }, (_, p) => p);
  return /* wgsl */ `
${slots.map((p) => `  var key${p} = ${EMPTY_SLOT};\n  var blk${p} = 0u;`).join('\n')}
  if (room > 0u) {
${batchLoad(logits)}
      for (var c = 0u; c < 4u; c++) {
        let j = j0 + c;
        let s = batch[c];
        if (j < localLow && s >= key${k - 1}) {
${slots.slice(1).reverse().map((p) => `          { let above = key${p - 1} > s; let stay = key${p} > s; blk${p} = select(select(blk${p - 1}, j, above), blk${p}, stay); key${p} = select(select(key${p - 1}, s, above), key${p}, stay); }`).join('\n')}
          { let stay = key0 > s; blk0 = select(j, blk0, stay); key0 = select(s, key0, stay); }
        }
      }
    }
  }
  let kept = select(0u, min(room, localLow - low), room > 0u);
${slots.map((p) => `  if (${p}u < kept) { picked[m + ${p}u] = blk${p}; }`).join('\n')}`;
}

/** The same ranking over private arrays (rows of more than {@link REGISTER_PICKS} picks). */
function loopRanking(logits: boolean): string {
  return /* wgsl */ `
  var keys: array<f32, MP>;
  // The best n − m of the other blocks [low, localLow), (score descending, index descending).
  var kept = 0u;
  if (room > 0u) {
${batchLoad(logits)}
      for (var c = 0u; c < 4u && j0 + c < localLow; c++) {
        let j = j0 + c;
        let s = batch[c];
        var p = kept;
        if (kept == room) {
          if (s < keys[room - 1u]) { continue; }
          p = room - 1u;
        } else {
          kept++;
        }
        while (p > 0u && s >= keys[p - 1u]) {
          keys[p] = keys[p - 1u];
          picked[m + p] = picked[m + p - 1u];
          p--;
        }
        keys[p] = s;
        picked[m + p] = j;
      }
    }
  }`;
}

/** Threads of the one-workgroup-per-row selection kernel ({@link nsaSelectRowWgsl}). */
export const NSA_SELECT_ROW_THREADS = 256;

/** Most candidate blocks {@link nsaSelectRowWgsl} ranks in workgroup memory (8 KiB); longer rows take the per-thread kernel. */
export const NSA_SELECT_ROW_BLOCKS = 2048;

/**
 * The same selection for a decode step's few rows, one workgroup per row: the per-thread kernel
 * above walks a row's IC + 1 blocks serially in one thread (~0.9 ms for 1 024 blocks at 64k on the
 * H100, where a decode step has 32 such rows). Here the row's candidate scores go to workgroup
 * memory as order-preserving u32 keys, and the workgroup's radix top-k (`radix-top-k-wgsl.ts`,
 * the indexer's) keeps the best n − m of them with the CPU's order (score descending, ties toward
 * the later block); forced blocks, sorting and the row's layout are the per-thread kernel's.
 * (It counted every block's rank against the row before: a warp then waited for its best block's
 * full walk over the row, ~1 000 workgroup loads per block.) Params {@link NSA_SELECT_PARAMS},
 * bindings as there.
 */
export const nsaSelectRowWgsl = memoKernel(function nsaSelectRowWgsl(o: NsaSelectKernelOptions): string {
  const picks = Math.max(1, o.maxPicks);
  return /* wgsl */ `
const MP: u32 = ${picks}u;
const NT: u32 = ${NSA_SELECT_ROW_THREADS}u;
${SELECT_BINDINGS}${BLOCK_SCORE}
${SORTABLE_WGSL}

var<workgroup> scoreKeys: array<u32, ${NSA_SELECT_ROW_BLOCKS}>;
var<workgroup> runs: array<u32, ${NSA_SELECT_ROW_THREADS}>;
${RADIX_TOP_K_WORKGROUP}
var<workgroup> chosen: array<u32, ${picks}>;

@compute @workgroup_size(${NSA_SELECT_ROW_THREADS})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let linear = wid.x + wid.y * P.tilesX;
  if (linear >= P.slots * P.rangeRows) { return; }
  let kvSlot = linear / P.rangeRows;
  let rangeRow = linear % P.rangeRows;
${ROW_START}
  let span = localLow - low;
  if (room > 0u) {
    for (var x = lid; x < span; x += NT) {
      let j = low + x;
      var s = ${o.logits === true ? '-3.0e38' : '0.0'};
      if (firstWindow(j) < nc) { s = importance[base + j * P.rangeRows]; }
      scoreKeys[x] = sortable(s);
    }
    workgroupBarrier();
${radixTopKWgsl('pick', 'scoreKeys', 'span', 'room', (u, rank) => `chosen[${rank}] = low + ${u};`)}
  }
  if (lid != 0u) { return; }
  for (var a = 0u; a < room; a++) { picked[m + a] = chosen[a]; }
  let count = m + room;
${WRITE_ROW}
}
`;
});
