/**
 * Fast dense attention on the CPU: flash-style tiling with an online softmax.
 *
 *   for each query block Q_b (64 rows, every query head of a GQA group stacked) and key tile K_t:
 *     S = Q_b K_tᵀ · scale,  m' = max(m, rowmax S),  P = e^{S − m'},
 *     l' = e^{m − m'} l + rowsum P,  O' = e^{m − m'} O + P V_t
 *   o = O / l,  lse = m + ln l
 *
 * Extra memory is O(S·D) for one KV head's copy plus O(block) accumulators — never S×S.
 * Under `causal`, key tiles wholly after a query block's last position are never visited.
 */
import { densePairCount, validateAttentionInput, type AttentionDims, type AttentionInput, type AttentionResult } from './attention.js';
import { rowOffset, tensor } from './tensor.js';
import { attendRanges, copyRows, createRowScratch, roundUp4 } from './kernels/attend-ranges.js';
import { resolveKernel, TILE_KEYS, type KernelPreference, type SimdArena } from './kernels/simd-runtime.js';
import { defaultThreads, workerPool } from './kernels/worker-pool.js';
import { sparseStats } from './sparse-executor.js';

/** Options of {@link denseAttention}. */
export interface DenseAttentionOptions {
  /** Skip the NaN/Infinity scan when the caller already validated. */
  readonly checkFinite?: boolean;
  /**
   * Kernel to run: `auto` (default: WebAssembly SIMD where the runtime supports it, else JS),
   * `wasm-simd` (the same, but a fallback is reported in `backend.fallbackReason`) or `js`
   * (the pure-JS row kernel, kept for runtimes without WebAssembly SIMD and for testing).
   */
  readonly kernel?: KernelPreference;
  /**
   * Threads for the WebAssembly flash path and for short queries over a `kernel`-storage KV
   * cache: the caller plus `threads − 1` worker threads that share each job over a shared
   * memory (Node only; the call stays synchronous). Default: the machine's cores, at most 4.
   * `1` runs on the calling thread alone.
   */
  readonly threads?: number;
}

/** Query rows per flash block (per query head). */
const QUERY_BLOCK = 64;
/** Query blocks copied in per job: bounds the Q/O copies to 2048 rows per head of the group. */
const JOB_BLOCKS = 32;
/**
 * Below this many query rows per GQA group the flash tiles would be mostly padding: the row
 * kernel (one query over its key range, K/V copied once per head) runs instead — decode steps.
 */
const MIN_FLASH_ROWS = 16;

/**
 * Fast dense attention on the CPU (the baseline every sparse method is compared to).
 * O(S) extra memory; never an S×S buffer. Records the kernel that ran in `backend.kernel`:
 * `wasm-simd` (flash tiles, or the row kernel for short query chunks) or `js`.
 */
export function denseAttention(input: AttentionInput, options: DenseAttentionOptions = {}): AttentionResult & { lse: Float32Array } {
  const d = validateAttentionInput(input, { checkFinite: options.checkFinite ?? true });
  const started = performance.now();
  const out = new Float32Array(d.batch * d.queryHeads * d.querySeq * d.valueDim);
  const lse = new Float32Array(d.batch * d.queryHeads * d.querySeq);
  const preference = options.kernel ?? 'auto';
  const { arena, fallbackReason } = resolveKernel(preference);
  let kernel: string;
  let threads = 1;
  if (arena && d.querySeq * d.groupSize >= MIN_FLASH_ROWS) {
    threads = flashDense(arena, input, d, out, lse, options.threads ?? defaultThreads());
    kernel = 'wasm-simd';
  } else if (arena) {
    threads = chunkedRows(arena, input, d, out, lse, options.threads ?? defaultThreads());
    kernel = 'wasm-simd';
  } else {
    kernel = rowDense(input, d, out, lse, preference);
  }
  return {
    output: tensor([d.batch, d.queryHeads, d.querySeq, d.valueDim], out),
    lse,
    stats: sparseStats(d, densePairCount(d), true, 0, performance.now() - started),
    backend: {
      backend: 'cpu',
      kernel,
      device: `cpu, ${threads} thread${threads === 1 ? '' : 's'}`,
      ...(preference !== 'js' && fallbackReason !== undefined ? { fallbackReason } : {}),
    },
  };
}

/** Keys per chunk of the short-query path: K and V of a chunk (≤ 256 KB at D = 128) stay in L2. */
const CHUNK_KEYS = 256;

/**
 * The short-query path (decode steps, small chunks): per KV head, keys are copied into the
 * module's memory one chunk at a time and every query row of the GQA group attends to the
 * chunk (`attendRows`) while it is in cache; chunk partials merge exactly by their running max
 * and sum (log2 domain):
 *
 *   m' = max(m, m_c),  l' = 2^{m − m'} l + 2^{m_c − m'} l_c,  o' = 2^{m − m'} o + 2^{m_c − m'} l_c o_c
 *
 * So K/V are read from memory once per KV head (not once per query head) and never copied
 * whole; the extra memory is one chunk plus the rows' accumulators. K/V that already live in
 * the kernels' memory go to {@link inPlaceRows} instead. Returns the number of threads that ran.
 */
function chunkedRows(arena: SimdArena, input: AttentionInput, d: AttentionDims, out: Float32Array, lse: Float32Array, threads: number): number {
  const { headDim: dim, valueDim, groupSize: groups, querySeq, keySeq } = d;
  // K/V already in the kernels' memory (a `kernel`-storage KV cache) with rows a whole number
  // of vectors are read in place; a single query row then takes its whole range in one call.
  const kPointer = dim % 4 === 0 && valueDim % 4 === 0 ? arena.pointerOf(input.k.data) : undefined;
  const vPointer = kPointer === undefined ? undefined : arena.pointerOf(input.v.data);
  // Measured: a lone row (one-token decode without GQA) gains from reading in place on every
  // thread; a group's rows re-reading a chunk ran faster from the hot copy buffer below.
  if (vPointer !== undefined && groups * querySeq === 1) return inPlaceRows(arena, input, d, kPointer!, vPointer, out, lse, threads);
  const dimPadded = roundUp4(dim);
  const valuePadded = roundUp4(valueDim);
  const rows = groups * querySeq;
  const chunkKeys = CHUNK_KEYS;
  arena.reset();
  const kPtr = arena.alloc(CHUNK_KEYS * dimPadded, false);
  const vPtr = arena.alloc(CHUNK_KEYS * valuePadded, false);
  const qPtr = arena.alloc(rows * dimPadded);
  const sPtr = arena.alloc(chunkKeys + 4, false);
  const oPtr = arena.alloc(valuePadded);
  const statsPtr = arena.alloc(2);
  const rangesPtr = arena.alloc(2);
  const f32 = arena.f32;
  const i32 = arena.i32;
  const kernels = arena.kernels;
  const qScale = d.scale * Math.LOG2E;
  const acc = new Float64Array(rows * valueDim);
  const running = new Float64Array(2 * rows);
  const [oAt, statsAt] = [oPtr >> 2, statsPtr >> 2];
  const lastPosition = d.causal ? d.queryOffset + querySeq - 1 : keySeq - 1;
  for (let b = 0; b < d.batch; b++) {
    for (let kvh = 0; kvh < d.kvHeads; kvh++) {
      // Q rows of the group, scaled to the log2 domain: row g·querySeq + i is head g, query i.
      for (let g = 0; g < groups; g++) {
        for (let i = 0; i < querySeq; i++) {
          const from = rowOffset(d.qDims, b, kvh * groups + g, i);
          const to = (qPtr >> 2) + (g * querySeq + i) * dimPadded;
          for (let c = 0; c < dim; c++) f32[to + c] = input.q.data[from + c]! * qScale;
        }
      }
      acc.fill(0);
      for (let r = 0; r < rows; r++) running.set([-Infinity, 0], 2 * r);
      const kBase = rowOffset(d.kDims, b, kvh, 0);
      const vBase = rowOffset(d.vDims, b, kvh, 0);
      for (let first = 0; first <= lastPosition; first += chunkKeys) {
        const count = Math.min(chunkKeys, lastPosition + 1 - first);
        copyRows(f32, input.k.data, kBase + first * dim, kPtr >> 2, count, dim, dimPadded);
        copyRows(f32, input.v.data, vBase + first * valueDim, vPtr >> 2, count, valueDim, valuePadded);
        for (let r = 0; r < rows; r++) {
          const i = r % querySeq;
          const visible = Math.min(count, (d.causal ? d.queryOffset + i + 1 : keySeq) - first);
          if (visible <= 0) continue;
          i32[rangesPtr >> 2] = 0;
          i32[(rangesPtr >> 2) + 1] = visible;
          kernels.attendRows(qPtr + r * dimPadded * 4, dimPadded, kPtr, vPtr, valuePadded, rangesPtr, 1, sPtr, oPtr, statsPtr);
          mergeChunk(running, r, acc, r * valueDim, f32, statsAt, oAt, valueDim);
        }
      }
      for (let r = 0; r < rows; r++) {
        const g = Math.floor(r / querySeq);
        const i = r % querySeq;
        const row = (b * d.queryHeads + kvh * groups + g) * querySeq + i;
        const inv = 1 / running[2 * r + 1]!;
        for (let c = 0; c < valueDim; c++) out[row * valueDim + c] = acc[r * valueDim + c]! * inv;
        lse[row] = running[2 * r]! * Math.LN2 + Math.log(running[2 * r + 1]!);
      }
    }
  }
  return 1;
}

/**
 * Merges one chunk's partial (`[max, sum]` in the log2 domain at `f32[statsAt]`, normalised
 * output at `f32[outAt]`) into row `r`'s running `[max, sum]` (`running[2r]`) and unnormalised
 * accumulator `acc[accAt …]`: m' = max(m, m_c), α = 2^{m − m'}, β = 2^{m_c − m'} l_c,
 * l' = α l + β, o' = α o + β o_c. A chunk the row does not see (sum 0) changes nothing.
 */
function mergeChunk(running: Float64Array, r: number, acc: Float64Array, accAt: number, f32: Float32Array, statsAt: number, outAt: number, valueDim: number): void {
  const chunkSum = f32[statsAt + 1]!;
  if (chunkSum === 0) return;
  const chunkMax = f32[statsAt]!;
  const previous = running[2 * r]!;
  const next = Math.max(previous, chunkMax);
  const keep = previous === -Infinity ? 0 : 2 ** (previous - next);
  const add = 2 ** (chunkMax - next) * chunkSum;
  running[2 * r] = next;
  running[2 * r + 1] = running[2 * r + 1]! * keep + add;
  for (let c = 0; c < valueDim; c++) acc[accAt + c] = acc[accAt + c]! * keep + f32[outAt + c]! * add;
}

/**
 * Keys per task of the in-place short-query path: a lone row reads each key once and takes 2048;
 * several rows re-read their chunk, so its K and V (≤ 32 KB) should stay in cache.
 */
function inPlaceChunkKeys(rows: number, dim: number, valueDim: number): number {
  if (rows === 1) return 2048;
  return Math.max(32, Math.floor(32768 / (4 * (dim + valueDim)) / 32) * 32);
}

/**
 * The short-query path over K/V that already live in the kernels' memory (a `kernel`-storage
 * KV cache, rows a whole number of vectors): nothing is copied but the queries. Tasks of one
 * KV head × one chunk of keys (every query row of the GQA group) run `attendChunks` on the calling
 * thread and the worker pool, which read the cache in place; the chunk partials then merge
 * exactly as in {@link chunkedRows}. Returns the number of threads that ran.
 */
function inPlaceRows(arena: SimdArena, input: AttentionInput, d: AttentionDims, kPointer: number, vPointer: number, out: Float32Array, lse: Float32Array, threads: number): number {
  const { headDim: dim, valueDim, groupSize: groups, querySeq, keySeq } = d;
  const rows = groups * querySeq;
  const lastPosition = d.causal ? d.queryOffset + querySeq - 1 : keySeq - 1;
  const chunkKeys = inPlaceChunkKeys(rows, dim, valueDim);
  const chunks = Math.ceil((lastPosition + 1) / chunkKeys);
  const heads = d.batch * d.kvHeads;
  const tasks = heads * chunks;
  const pool = tasks > 1 ? workerPool(arena, threads) : undefined;
  const workers = pool?.workers ?? 0;
  arena.reset();
  const qPtr = arena.alloc(heads * rows * dim, false);
  const tablePtr = arena.alloc(8 * tasks, false);
  const limitsPtr = arena.alloc(tasks * rows, false);
  const outPtr = arena.alloc(tasks * rows * valueDim, false);
  const statsPtr = arena.alloc(tasks * rows * 2, false);
  const jobPtr = arena.alloc(8);
  const scratch = Array.from({ length: 1 + workers }, () => arena.alloc(chunkKeys + 8, false));
  const f32 = arena.f32;
  const i32 = arena.i32;
  const qScale = d.scale * Math.LOG2E;
  for (let b = 0; b < d.batch; b++) {
    for (let kvh = 0; kvh < d.kvHeads; kvh++) {
      const head = b * d.kvHeads + kvh;
      for (let g = 0; g < groups; g++) {
        const from = rowOffset(d.qDims, b, kvh * groups + g, 0);
        const to = (qPtr >> 2) + (head * rows + g * querySeq) * dim;
        for (let e = 0; e < querySeq * dim; e++) f32[to + e] = input.q.data[from + e]! * qScale;
      }
      const kBase = kPointer + rowOffset(d.kDims, b, kvh, 0) * 4;
      const vBase = vPointer + rowOffset(d.vDims, b, kvh, 0) * 4;
      for (let c = 0; c < chunks; c++) {
        const task = head * chunks + c;
        const first = c * chunkKeys;
        const count = Math.min(chunkKeys, lastPosition + 1 - first);
        for (let r = 0; r < rows; r++) {
          const i = r % querySeq;
          const visible = (d.causal ? d.queryOffset + i + 1 : keySeq) - first;
          i32[(limitsPtr >> 2) + task * rows + r] = Math.max(0, Math.min(count, visible));
        }
        i32.set(
          [qPtr + head * rows * dim * 4, rows, kBase + first * dim * 4, vBase + first * valueDim * 4, limitsPtr + task * rows * 4, outPtr + task * rows * valueDim * 4, statsPtr + task * rows * 8, 0],
          (tablePtr >> 2) + 8 * task,
        );
      }
    }
  }
  i32.set([0, tasks, tablePtr, dim, valueDim], jobPtr >> 2);
  if (pool) pool.run(arena, 'attendChunks', jobPtr, scratch[0]!, scratch.slice(1));
  else arena.kernels.attendChunks(jobPtr, scratch[0]!);
  const acc = new Float64Array(valueDim);
  const running = new Float64Array(2);
  for (let head = 0; head < heads; head++) {
    const b = Math.floor(head / d.kvHeads);
    const kvh = head % d.kvHeads;
    for (let r = 0; r < rows; r++) {
      acc.fill(0);
      running.set([-Infinity, 0]);
      for (let c = 0; c < chunks; c++) {
        const at = (head * chunks + c) * rows + r;
        mergeChunk(running, 0, acc, 0, f32, (statsPtr >> 2) + 2 * at, (outPtr >> 2) + at * valueDim, valueDim);
      }
      const g = Math.floor(r / querySeq);
      const row = (b * d.queryHeads + kvh * groups + g) * querySeq + (r % querySeq);
      const inv = 1 / running[1]!;
      for (let e = 0; e < valueDim; e++) out[row * valueDim + e] = acc[e]! * inv;
      lse[row] = running[0]! * Math.LN2 + Math.log(running[1]!);
    }
  }
  return 1 + workers;
}

/** Every query over its visible key range through the row kernel; returns the kernel's name. */
function rowDense(input: AttentionInput, d: AttentionDims, out: Float32Array, lse: Float32Array, preference: KernelPreference): string {
  const scratch = createRowScratch(d.keySeq, d.valueDim, preference);
  for (let b = 0; b < d.batch; b++) {
    for (let h = 0; h < d.queryHeads; h++) {
      const kvh = Math.floor(h / d.groupSize);
      const kBase = rowOffset(d.kDims, b, kvh, 0);
      const vBase = rowOffset(d.vDims, b, kvh, 0);
      for (let i = 0; i < d.querySeq; i++) {
        const row = (b * d.queryHeads + h) * d.querySeq + i;
        scratch.rangeCount = 0;
        scratch.pushRange(0, d.causal ? d.queryOffset + i + 1 : d.keySeq);
        attendRanges(input.q.data, rowOffset(d.qDims, b, h, i), input.k.data, kBase, input.v.data, vBase, d.headDim, d.valueDim, d.scale, scratch, out, row * d.valueDim, lse, row);
      }
    }
  }
  return scratch.kernel;
}

/**
 * The flash path: per KV head, K is copied in and transposed into tiles by the module, V copied
 * row-major (both zero-padded); then jobs of up to `JOB_BLOCKS` query blocks (every head of the
 * group stacked per block) run `flashBlocks` on the calling thread and the pool's workers. The
 * thread that claims a block scales its raw q rows, runs it against every visible key tile and
 * normalises its output rows, so the caller only copies q in and o out (`set`, a memcpy) and
 * takes each row's log-sum-exp. Returns the number of threads that ran.
 */
function flashDense(arena: SimdArena, input: AttentionInput, d: AttentionDims, out: Float32Array, lse: Float32Array, threads: number): number {
  const { headDim: dim, valueDim, groupSize: groups, keySeq, querySeq } = d;
  const valuePadded = roundUp4(valueDim);
  const tiles = Math.ceil(keySeq / TILE_KEYS);
  const blocks = Math.ceil(querySeq / QUERY_BLOCK);
  const jobBlocks = Math.min(blocks, JOB_BLOCKS);
  const pool = blocks > 1 ? workerPool(arena, threads) : undefined;
  const workers = pool?.workers ?? 0;
  const jobRows = Math.min(jobBlocks * QUERY_BLOCK, roundUp4(querySeq)) * groups;
  arena.reset();
  const ktPtr = arena.alloc(tiles * TILE_KEYS * dim);
  const kPtr = arena.alloc(keySeq * dim, false);
  const vPtr = arena.alloc(tiles * TILE_KEYS * valuePadded);
  const qPtr = arena.alloc(jobRows * dim);
  const oPtr = arena.alloc(jobRows * valuePadded, false);
  const mPtr = arena.alloc(jobRows, false);
  const lPtr = arena.alloc(jobRows, false);
  const jobPtr = arena.alloc(18);
  const scratch = Array.from({ length: 1 + workers }, () => arena.alloc(QUERY_BLOCK * TILE_KEYS));
  const f32 = arena.f32;
  const i32 = arena.i32;
  const k = input.k.data;
  const q = input.q.data;
  const [qAt, oAt, mAt, lAt] = [qPtr >> 2, oPtr >> 2, mPtr >> 2, lPtr >> 2];
  new Float64Array(f32.buffer, jobPtr + 64, 1)[0] = d.scale * Math.LOG2E;
  for (let b = 0; b < d.batch; b++) {
    for (let kvh = 0; kvh < d.kvHeads; kvh++) {
      const kFrom = rowOffset(d.kDims, b, kvh, 0);
      f32.set(k.subarray(kFrom, kFrom + keySeq * dim), kPtr >> 2);
      arena.kernels.transposeTiles(kPtr, ktPtr, keySeq, dim);
      copyRows(f32, input.v.data, rowOffset(d.vDims, b, kvh, 0), vPtr >> 2, keySeq, valueDim, valuePadded);
      for (let first = 0; first < blocks; first += jobBlocks) {
        const count = Math.min(jobBlocks, blocks - first);
        const firstQuery = first * QUERY_BLOCK;
        const queries = Math.min(count * QUERY_BLOCK, querySeq - firstQuery);
        // Raw q in (the kernel scales it to the log2 domain); padding rows zero. Block bi, head
        // g, row r sits at row bi·QUERY_BLOCK·groups + g·rows + r.
        for (let bi = 0; bi < count; bi++) {
          const valid = Math.min(QUERY_BLOCK, queries - bi * QUERY_BLOCK);
          const rows = roundUp4(valid);
          for (let g = 0; g < groups; g++) {
            const from = rowOffset(d.qDims, b, kvh * groups + g, firstQuery + bi * QUERY_BLOCK);
            const to = qAt + (bi * QUERY_BLOCK * groups + g * rows) * dim;
            f32.set(q.subarray(from, from + valid * dim), to);
            f32.fill(0, to + valid * dim, to + rows * dim);
          }
        }
        i32.set(
          [0, qPtr, oPtr, mPtr, lPtr, count, groups, dim, ktPtr, keySeq, vPtr, valuePadded, d.queryOffset + firstQuery, queries, d.causal ? 1 : 0, QUERY_BLOCK],
          jobPtr >> 2,
        );
        if (pool) pool.run(arena, 'flashBlocks', jobPtr, scratch[0]!, scratch.slice(1));
        else arena.kernels.flashBlocks(jobPtr, scratch[0]!);
        for (let bi = 0; bi < count; bi++) {
          const valid = Math.min(QUERY_BLOCK, queries - bi * QUERY_BLOCK);
          const rows = roundUp4(valid);
          for (let g = 0; g < groups; g++) {
            const firstRow = (b * d.queryHeads + kvh * groups + g) * querySeq + firstQuery + bi * QUERY_BLOCK;
            const at = bi * QUERY_BLOCK * groups + g * rows;
            const from = oAt + at * valuePadded;
            if (valuePadded === valueDim) out.set(f32.subarray(from, from + valid * valueDim), firstRow * valueDim);
            else for (let r = 0; r < valid; r++) out.set(f32.subarray(from + r * valuePadded, from + r * valuePadded + valueDim), (firstRow + r) * valueDim);
            for (let r = 0; r < valid; r++) lse[firstRow + r] = f32[mAt + at + r]! * Math.LN2 + Math.log(f32[lAt + at + r]!);
          }
        }
      }
    }
  }
  return 1 + workers;
}
