import { densePairCount, validateAttentionInput, type AttentionDims, type AttentionInput, type AttentionResult } from './attention.js';
import { ShapeError } from './errors.js';
import { forEachKeyRange, validateSelection, type Selection } from './selection.js';
import { rowOffset, tensor } from './tensor.js';
import { attendRanges, copyRows, createRowScratch, roundUp4 } from './kernels/attend-ranges.js';
import { resolveKernel, TILE_KEYS, type SimdArena } from './kernels/simd-runtime.js';
import { defaultThreads, workerPool } from './kernels/worker-pool.js';

/** Result of the exact sparse executor: output, the selection it ran, and per-query log-sum-exp. */
export interface SparseAttentionResult extends AttentionResult {
  readonly selection: Selection;
  /**
   * Natural-log log-sum-exp of the scaled scores over each query's attended keys, `[B, Hq, Sq]`
   * flattened; `-Infinity` where a query attended to nothing (its output row is 0). Two partial
   * attentions over disjoint key sets merge exactly with {@link mergeAttention}.
   */
  readonly lse: Float32Array;
}

/** Options of {@link sparseAttention}. */
export interface SparseAttentionOptions {
  /** Milliseconds the caller spent choosing the selection, carried into the stats. */
  readonly selectionMs?: number;
  /** Check the selection's structure (sorted, unique, in range). On by default; O(nnz). */
  readonly validateSelection?: boolean;
  /** Skip the NaN/Infinity scan of q, k, v when the caller already did it. */
  readonly checkFinite?: boolean;
  /**
   * Threads for the flash path (selection rows shared by ≥ 16 query rows, e.g. block
   * selections per query block): the caller plus `threads − 1` workers, as in
   * `denseAttention`. Default: the machine's cores, at most 4.
   */
  readonly threads?: number;
  /**
   * Flash path: floats of gathered keys, values and query blocks held in kernel memory before
   * a job runs (default 16 M = 64 MB). Bounds the executor's memory whatever the selection.
   */
  readonly maxJobFloats?: number;
}

/**
 * The exact sparse executor: attention of every query over exactly its selected keys, with
 * causal masking applied on top of the selection, computed with a max-subtracted softmax
 * per query (O(selected keys) scratch, never S×S). Every method family runs its attention
 * through this function instead of writing its own loop.
 *
 * o_i = Σ_{j ∈ sel(i), j ≤ pos(i)} softmax_j(scale · q_i·k_j) v_j
 *
 * Two kernels, recorded in `backend.kernel`: selection rows shared by ≥ 16 (query, head) rows
 * (block selections per query block, GQA-shared rows) take the flash path
 * (`executor-flash-wasm-simd`: gathered keys, 64 × 64 tiles, worker threads); every other row
 * runs the one-query row kernel (`executor-wasm-simd`, or `executor-js` without WebAssembly
 * SIMD). Both compute the same exact attention; neither reads an unselected key.
 */
export function sparseAttention(input: AttentionInput, selection: Selection, options: SparseAttentionOptions = {}): SparseAttentionResult {
  const d = validateAttentionInput(input, { checkFinite: options.checkFinite ?? true });
  checkSelectionFits(selection, d);
  if (options.validateSelection ?? true) validateSelection(selection);
  const started = performance.now();
  const out = new Float32Array(d.batch * d.queryHeads * d.querySeq * d.valueDim);
  const lse = new Float32Array(d.batch * d.queryHeads * d.querySeq);
  const stack = selection.headScope === 'kv' ? d.groupSize : 1;
  const { arena } = resolveKernel('auto');
  if (arena && Math.min(selection.queryBlockSize, d.querySeq) * stack >= MIN_FLASH_ROWS) {
    const run = flashExecutor(arena, input, d, selection, out, lse, options.threads ?? defaultThreads(), options.maxJobFloats ?? JOB_FLOATS);
    return {
      output: tensor([d.batch, d.queryHeads, d.querySeq, d.valueDim], out),
      selection,
      lse,
      stats: sparseStats(d, run.pairs, selection.headScope === 'kv', options.selectionMs ?? 0, performance.now() - started),
      backend: { backend: 'cpu', kernel: 'executor-flash-wasm-simd', device: `cpu, ${run.threads} thread${run.threads === 1 ? '' : 's'}` },
    };
  }
  const scratch = createRowScratch(d.keySeq, d.valueDim);
  const { q, k, v } = input;
  let pairs = 0;
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.queryHeads; h++) {
      const kvh = Math.floor(h / d.groupSize);
      const selHead = selection.headScope === 'query' ? h : kvh;
      const kBase = rowOffset(d.kDims, b, kvh, 0);
      const vBase = rowOffset(d.vDims, b, kvh, 0);
      for (let i = 0; i < d.querySeq; i++) {
        const row = (b * selection.heads + selHead) * selection.rows + Math.floor(i / selection.queryBlockSize);
        const limit = d.causal ? d.queryOffset + i + 1 : d.keySeq;
        const outRow = (b * d.queryHeads + h) * d.querySeq + i;
        scratch.rangeCount = 0;
        forEachKeyRange(selection, row, limit, (start, end) => scratch.pushRange(start, end));
        pairs += attendRanges(
          q.data, rowOffset(d.qDims, b, h, i),
          k.data, kBase, v.data, vBase,
          d.headDim, d.valueDim, d.scale,
          scratch, out, outRow * d.valueDim, lse, outRow,
        );
      }
    }
  }
  const attentionMs = performance.now() - started;
  return {
    output: tensor([d.batch, d.queryHeads, d.querySeq, d.valueDim], out),
    selection,
    lse,
    stats: sparseStats(d, pairs, selection.headScope === 'kv', options.selectionMs ?? 0, attentionMs),
    // The row kernel that actually ran (`wasm-simd` where WebAssembly SIMD loads, else `js`).
    backend: { backend: 'cpu', kernel: `executor-${scratch.kernel}`, ...(scratch.fallbackReason ? { fallbackReason: scratch.fallbackReason } : {}) },
  };
}

/** Selection rows shared by at least this many (query, head) rows run on the flash path. */
const MIN_FLASH_ROWS = 16;
/** Query rows per flash task (the kernel's per-thread scratch holds 64 rows of scores). */
const TASK_ROWS = 64;
/** Floats gathered into kernel memory before a job runs: bounds the executor's memory (64 MB). */
const JOB_FLOATS = 1 << 24;

/** One flash task: a block of ≤ 64 queries (every head of its stack) over its row's gathered keys. */
interface FlashTask {
  readonly b: number;
  /** First query head of the stack (`stack` consecutive heads). */
  readonly head: number;
  readonly firstQuery: number;
  readonly queries: number;
  /** Rows per head in kernel memory (`queries` rounded up to 4). */
  readonly rows: number;
  readonly qPtr: number;
  readonly oPtr: number;
  readonly mPtr: number;
  readonly lPtr: number;
  readonly kPtr: number;
  readonly vPtr: number;
  readonly posPtr: number;
  readonly keyCount: number;
}

/**
 * The executor's flash path, for selections whose rows are shared by many queries (block
 * selections per query block, or a GQA group's shared rows): per selection row, the selected
 * keys are gathered once into kernel memory (K and V rows, their positions), then every query block of ≤ 64 queries × the heads sharing the row runs the flash
 * kernel over them (`flashGathered`: the same tiles and online softmax as dense attention, with
 * the causal mask taken from the gathered positions). Jobs of up to `JOB_FLOATS` gathered floats
 * run on the calling thread and the worker pool. Returns the pairs scored and threads used.
 */
function flashExecutor(
  arena: SimdArena, input: AttentionInput, d: AttentionDims, selection: Selection,
  out: Float32Array, lse: Float32Array, threads: number, jobFloats: number,
): { pairs: number; threads: number } {
  const { headDim: dim, valueDim, querySeq, keySeq } = d;
  const stack = selection.headScope === 'kv' ? d.groupSize : 1;
  const valuePadded = roundUp4(valueDim);
  const pool = workerPool(arena, threads);
  const workers = pool?.workers ?? 0;
  const qScale = d.scale * Math.LOG2E;
  let pairs = 0;
  let tasks: FlashTask[] = [];
  let used = 0;
  let positions = new Int32Array(1024);

  const runJob = (): void => {
    if (tasks.length === 0) return;
    const tablePtr = arena.alloc(12 * tasks.length);
    const jobPtr = arena.alloc(8);
    const scratch = Array.from({ length: 1 + workers }, () => arena.alloc(TASK_ROWS * TILE_KEYS + TASK_ROWS + dim * TILE_KEYS, false));
    const i32 = arena.i32;
    for (const [n, t] of tasks.entries()) {
      i32.set([t.qPtr, t.oPtr, t.mPtr, t.lPtr, t.rows, t.kPtr, t.vPtr, t.posPtr, t.keyCount, d.queryOffset + t.firstQuery], (tablePtr >> 2) + 12 * n);
    }
    i32.set([0, tasks.length, stack, dim, valuePadded, d.causal ? 1 : 0, tablePtr], jobPtr >> 2);
    arena.f32[(jobPtr >> 2) + 7] = qScale;
    if (pool) pool.run(arena, 'flashGathered', jobPtr, scratch[0]!, scratch.slice(1));
    else arena.kernels.flashGathered(jobPtr, scratch[0]!);
    const f32 = arena.f32;
    for (const t of tasks) {
      for (let g = 0; g < stack; g++) {
        for (let r = 0; r < t.queries; r++) {
          const row = (t.b * d.queryHeads + t.head + g) * querySeq + t.firstQuery + r;
          const at = g * t.rows + r;
          const l = f32[(t.lPtr >> 2) + at]!;
          if (l === 0) {
            out.fill(0, row * valueDim, (row + 1) * valueDim);
            lse[row] = -Infinity;
            continue;
          }
          const inv = 1 / l;
          const from = (t.oPtr >> 2) + at * valuePadded;
          for (let c = 0; c < valueDim; c++) out[row * valueDim + c] = f32[from + c]! * inv;
          lse[row] = f32[(t.mPtr >> 2) + at]! * Math.LN2 + Math.log(l);
        }
      }
    }
    tasks = [];
    used = 0;
    arena.reset();
  };

  arena.reset();
  for (let b = 0; b < d.batch; b++) {
    for (let selHead = 0; selHead < selection.heads; selHead++) {
      const firstHead = selection.headScope === 'kv' ? selHead * d.groupSize : selHead;
      const kvh = Math.floor(firstHead / d.groupSize);
      const kBase = rowOffset(d.kDims, b, kvh, 0);
      const vBase = rowOffset(d.vDims, b, kvh, 0);
      for (let r = 0; r < selection.rows; r++) {
        const firstQuery = r * selection.queryBlockSize;
        const lastQuery = Math.min(querySeq, firstQuery + selection.queryBlockSize) - 1;
        const limit = d.causal ? d.queryOffset + lastQuery + 1 : keySeq;
        const row = (b * selection.heads + selHead) * selection.rows + r;
        // Gathered key positions, ascending.
        let n = 0;
        forEachKeyRange(selection, row, limit, (start, end) => {
          if (n + end - start > positions.length) {
            const grown = new Int32Array(Math.max(2 * positions.length, n + end - start));
            grown.set(positions.subarray(0, n));
            positions = grown;
          }
          for (let j = start; j < end; j++) positions[n++] = j;
        });
        const queryBlocks = Math.ceil((lastQuery + 1 - firstQuery) / TASK_ROWS);
        const tiles = Math.ceil(n / TILE_KEYS);
        const need = n * (dim + 1) + tiles * TILE_KEYS * valuePadded + queryBlocks * TASK_ROWS * stack * (dim + valuePadded + 2);
        if (used > 0 && used + need > jobFloats) runJob();
        used += need;
        let kPtr = 0;
        let vPtr = 0;
        let posPtr = 0;
        if (n > 0) {
          // Gathered rows, contiguous copies per range (the kernel transposes K tile by tile).
          kPtr = arena.alloc(n * dim, false);
          vPtr = arena.alloc(tiles * TILE_KEYS * valuePadded, false);
          posPtr = arena.alloc(n, false);
          const f32 = arena.f32;
          arena.i32.set(positions.subarray(0, n), posPtr >> 2);
          let idx = 0;
          forEachKeyRange(selection, row, limit, (start, end) => {
            f32.set(input.k.data.subarray(kBase + start * dim, kBase + end * dim), (kPtr >> 2) + idx * dim);
            copyRows(f32, input.v.data, vBase + start * valueDim, (vPtr >> 2) + idx * valuePadded, end - start, valueDim, valuePadded);
            idx += end - start;
          });
        }
        for (let first = firstQuery; first <= lastQuery; first += TASK_ROWS) {
          const queries = Math.min(TASK_ROWS, lastQuery + 1 - first);
          // Pairs: each query sees the gathered keys at or before its position (all, non-causal).
          let visible = 0;
          for (let i = first; i < first + queries; i++) {
            const position = d.causal ? d.queryOffset + i : keySeq;
            while (visible < n && positions[visible]! <= position) visible++;
            pairs += visible * stack;
          }
          if (n === 0) {
            for (let g = 0; g < stack; g++) {
              for (let i = first; i < first + queries; i++) {
                const outRow = (b * d.queryHeads + firstHead + g) * querySeq + i;
                out.fill(0, outRow * valueDim, (outRow + 1) * valueDim);
                lse[outRow] = -Infinity;
              }
            }
            continue;
          }
          const rows = roundUp4(queries);
          const qPtr = arena.alloc(stack * rows * dim);
          const oPtr = arena.alloc(stack * rows * valuePadded);
          const mPtr = arena.alloc(stack * rows, false);
          const lPtr = arena.alloc(stack * rows);
          const f32 = arena.f32;
          f32.fill(-Infinity, mPtr >> 2, (mPtr >> 2) + stack * rows);
          for (let g = 0; g < stack; g++) {
            const from = rowOffset(d.qDims, b, firstHead + g, first);
            f32.set(input.q.data.subarray(from, from + queries * dim), (qPtr >> 2) + g * rows * dim); // scaled by the kernel
          }
          tasks.push({ b, head: firstHead, firstQuery: first, queries, rows, qPtr, oPtr, mPtr, lPtr, kPtr, vPtr, posPtr, keyCount: n });
        }
      }
    }
  }
  runJob();
  return { pairs, threads: 1 + workers };
}

/** Stats for `pairs` scored pairs; KV rows shared by a GQA group are counted once per group. */
export function sparseStats(d: AttentionDims, pairs: number, sharedAcrossGroup: boolean, selectionMs: number, attentionMs: number) {
  const densePairs = densePairCount(d);
  const rowsRead = sharedAcrossGroup ? pairs / d.groupSize : pairs;
  return {
    pairs,
    densePairs,
    density: densePairs === 0 ? 0 : pairs / densePairs,
    kvBytesRead: rowsRead * 4 * (d.headDim + d.valueDim),
    selectionMs,
    attentionMs,
  };
}

function checkSelectionFits(s: Selection, d: AttentionDims): void {
  const heads = s.headScope === 'query' ? d.queryHeads : d.kvHeads;
  if (s.batch !== d.batch || s.heads !== heads) {
    throw new ShapeError(`selection is for batch ${s.batch} × ${s.heads} ${s.headScope} heads, input has batch ${d.batch} × ${heads} ${s.headScope} heads`);
  }
  const rows = Math.ceil(d.querySeq / s.queryBlockSize);
  if (s.rows !== rows) throw new ShapeError(`selection has ${s.rows} query rows of ${s.queryBlockSize}; ${d.querySeq} queries need ${rows}`);
  if (s.keySeq !== d.keySeq) throw new ShapeError(`selection refers to ${s.keySeq} keys, input has ${d.keySeq}`);
}

/**
 * Merges two partial attentions over disjoint key sets exactly, using their log-sum-exps:
 * o = (e^{lse_a} o_a + e^{lse_b} o_b) / (e^{lse_a} + e^{lse_b}). Returns the merged output and lse.
 */
export function mergeAttention(
  a: { output: Float32Array; lse: Float32Array },
  b: { output: Float32Array; lse: Float32Array },
  valueDim: number,
): { output: Float32Array; lse: Float32Array } {
  if (a.output.length !== b.output.length || a.lse.length !== b.lse.length || a.lse.length * valueDim !== a.output.length) {
    throw new ShapeError(`mergeAttention: partials differ in size (${a.output.length}/${a.lse.length} vs ${b.output.length}/${b.lse.length}, valueDim ${valueDim})`);
  }
  const output = new Float32Array(a.output.length);
  const lse = new Float32Array(a.lse.length);
  for (let r = 0; r < a.lse.length; r++) {
    const la = a.lse[r]!;
    const lb = b.lse[r]!;
    const m = Math.max(la, lb);
    if (m === -Infinity) {
      lse[r] = -Infinity;
      continue;
    }
    const wa = Math.exp(la - m);
    const wb = Math.exp(lb - m);
    const sum = wa + wb;
    lse[r] = m + Math.log(sum);
    const o = r * valueDim;
    for (let c = 0; c < valueDim; c++) output[o + c] = (wa * a.output[o + c]! + wb * b.output[o + c]!) / sum;
  }
  return { output, lse };
}
