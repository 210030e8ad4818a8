/**
 * NSA on the GPU: compression (window pooling), compression-probability block scoring, forced
 * blocks, top-n and the sliding-window union all run in WGSL, then the backend's exact sparse
 * executor attends (arXiv:2502.11089; the CPU method is `nsa.ts`, whose selection this reproduces).
 *
 *   pool     k̃_i = mean(K[i·d, i·d + l)) (or [max | min] for 'quest')     (`window-pool-wgsl.ts`)
 *   score    p_slc summed over the GQA group, tiled 64 queries × 64 windows (`nsa-score-tile-wgsl.ts`);
 *            a decode step (≤ 16 queries): logits one window per thread, then one workgroup per
 *            query reduces them to block importance (`nsa-decode-score-wgsl.ts`)
 *   select   forced blocks, top-n' ∪ window blocks                         (`nsa-select-wgsl.ts`;
 *            a decode step: one workgroup per row, ranks counted in parallel)
 *   split    union row = per-query rest ⊎ window blocks shared by 64 queries (`window-split-wgsl.ts`)
 *   attend   the rest per query (key-block executor), the shared part per 64-query row (rows
 *            executor), merged by lse into the row's one causal softmax    (`branch-merge-wgsl.ts`)
 *
 * `combine: 'union'` (the default and the training-free setting) attends the selection ∪ window
 * blocks in one softmax; `combine: 'gated'` runs the selected, window and compressed branches and
 * mixes them with the config's per-head gates (`nsa-gated-gpu.ts`). Per-token gate tensors (a
 * `nsaAttention` / decoder option, not part of the method's prefill) stay on the CPU.
 * Scratch per KV slot (union): the pooled windows, NC · D floats (2 · NC · D for 'quest'), plus
 * the block importance of one row range (rows × ceil(S / l′) floats, the range sized to stay
 * within {@link NSA_RANGE_BYTES} for the whole chunk).
 */
import { ConfigError, NumericError, densePairCount, parseConfig, sparseStats, validateAttentionInput, type AttentionDims, type AttentionInput, type AttentionResult } from '@sparse-attn/core';
import { chunkKeyStride, countPairs, dispatchGrid, residentCall, type GpuBackend, type GpuMethodDefinition, type GpuSelection, type GpuSelectionStep, type ResidentAttention, type ResidentChunk, type TileShape, selectThenAttend, type GpuDecoderOptions } from '@sparse-attn/backend-gpu';
import { completeWindows } from '../block-means.js';
import type { PoolingSpec } from '../cached-decoder.js';
import { selectionShare } from '../method-helpers.js';
import { visibleWindows } from '../nsa-block-selector.js';
import { nsaConfigSchema, nsaMethod, type NsaConfig } from '../nsa.js';
import { createGpuCachedDecoder, residentDecodeStepper, type DecodeStepPlan, type DecoderPool } from './gpu-cached-decoder.js';
import { assertWorkgroupFits, countSelectionEntries, currentBlockShortfall } from './gpu-helpers.js';
import { gatedScratchBytesPerSlot, runGatedBranches } from './nsa-gated-gpu.js';
import { NSA_SCORE_PARAMS, nsaScoreWgsl, nsaScoreWorkgroupBytes, type NsaScoreKernelOptions } from './nsa-score-tile-wgsl.js';
import { NSA_SELECT_PARAMS, NSA_SELECT_ROW_BLOCKS, NSA_SELECT_THREADS, nsaSelectRowWgsl, nsaSelectWgsl, type NsaSelectKernelOptions } from './nsa-select-wgsl.js';
import { NSA_DECODE_LOGIT_THREADS, NSA_DECODE_SCORE_PARAMS, nsaDecodeLogitsWgsl, nsaDecodeReduceWgsl, usesDecodeScoring } from './nsa-decode-score-wgsl.js';
import { WINDOW_POOL_PARAMS, WINDOW_POOL_THREADS, windowPoolWgsl } from './window-pool-wgsl.js';
import { BRANCH_MERGE_PARAMS, BRANCH_MERGE_THREADS, branchMergeWgsl } from './branch-merge-wgsl.js';
import { WINDOW_SPLIT_PARAMS, WINDOW_SPLIT_THREADS, windowSplitWgsl } from './window-split-wgsl.js';

/** Geometry of one NSA call on the GPU. */
export interface NsaPlan {
  readonly kernel: NsaSelectKernelOptions;
  readonly score: NsaScoreKernelOptions;
  /** Complete compression windows of the call. */
  readonly windows: number;
  /** Selection blocks of the call, ceil(keySeq / l′). */
  readonly blocks: number;
  /** Entries per CSR row (top-n, plus the window's blocks under 'union'). */
  readonly stride: number;
  /** Bytes of the largest scratch buffer per KV slot the call's chunking has to account for (the pooled windows). */
  readonly scratchBytesPerSlot: number;
  /** Most bytes of the block-importance scratch of one row range (all slots of a chunk); see {@link rangeRowsFor}. */
  readonly rangeBytes: number;
  /** (g_cmp, g_slc, g_win) per query head under 'gated'. */
  readonly gates: Float32Array | undefined;
}

/**
 * Default cap on the block-importance scratch of one row range: 256 MiB holds 2048 rows of 32 KV
 * slots × 1024 blocks (S = 64k, l′ = 64), so a 64k call takes 32 ranges and never allocates
 * rows × blocks for the whole call (8 GiB there).
 */
export const NSA_RANGE_BYTES = 256 * 1024 * 1024;

/** The config's gates as (g_cmp, g_slc, g_win) per query head; the CPU method's `ConfigError` for a wrong count. */
function gatesPerHead(config: NsaConfig, queryHeads: number): Float32Array {
  const out = new Float32Array(3 * queryHeads);
  (['compression', 'selection', 'window'] as const).forEach((name, k) => {
    const value = config.gates[name];
    if (typeof value !== 'number' && value.length !== queryHeads) {
      throw new ConfigError(`nsa: gates.${name} has ${value.length} values, the input has ${queryHeads} query heads (give one constant or one per head)`);
    }
    for (let h = 0; h < queryHeads; h++) out[3 * h + k] = typeof value === 'number' ? value : value[h]!;
  });
  return out;
}

/**
 * The query tile of the scoring kernel: 64 rows (256 threads), also for decode steps (one query
 * computes a padded 64-row tile: 63 wasted rows, but one workgroup per KV slot either way). The
 * 16-row variant of backend-gpu's scalar micro-tile loses the device on SwiftShader (as the
 * backend notes for its own 16-row kernels), so it is not used.
 */
const SCORE_TILE: TileShape = { rows: 64, chunk: 16 };

/**
 * Checks that the configuration runs on the GPU and the selection kernels fit the device, and
 * sizes its buffers (throws `ConfigError` before any GPU work). `rangeBytes` caps the block
 * importance scratch of one row range (default {@link NSA_RANGE_BYTES}, and never above a binding).
 */
export function nsaPlan(backend: GpuBackend, d: AttentionDims, config: NsaConfig, rangeBytes = NSA_RANGE_BYTES): NsaPlan {
  const windows = completeWindows(d.keySeq, config.compressionBlock, config.compressionStride);
  const blocks = Math.max(1, Math.ceil(d.keySeq / config.selectionBlock));
  const maxPicks = Math.min(config.selectedBlocks, blocks);
  const union = config.combine === 'union';
  const stride = union ? Math.min(blocks, config.selectedBlocks + (config.window > 0 ? Math.ceil(config.window / config.selectionBlock) + 1 : 0)) : maxPicks;
  const quest = config.compressionScore === 'quest';
  // One window per selection block and one head per group: the tiled scorer's logits rank the
  // blocks as their probabilities do, so it skips the log-sum-exp pass (see NsaScoreKernelOptions).
  const windowPerBlock = config.compressionBlock === config.compressionStride && config.compressionStride === config.selectionBlock;
  const logits = d.groupSize === 1 && windowPerBlock;
  const kernel: NsaSelectKernelOptions = { maxBlocks: blocks, maxPicks, logits };
  const score: NsaScoreKernelOptions = { headDim: d.headDim, groupSize: d.groupSize, quest, tile: SCORE_TILE, logits, windowPerBlock };
  assertWorkgroupFits('nsa', backend, nsaScoreWorkgroupBytes(score), `the scoring tile of ${score.tile.rows} queries × 64 windows (group of ${d.groupSize} query heads)`);
  const scratchBytesPerSlot = union ? 4 * windows * d.headDim * (quest ? 2 : 1) : gatedScratchBytesPerSlot(d, config, windows);
  const range = Math.min(rangeBytes, backend.context.maxBinding);
  if (4 * score.tile.rows * blocks > range) {
    throw new ConfigError(`nsa: one tile of ${score.tile.rows} queries × ${blocks} selection blocks needs ${4 * score.tile.rows * blocks} bytes of block importance, above ${range} (use larger selection blocks)`);
  }
  return { kernel, score, windows, blocks, stride, scratchBytesPerSlot, rangeBytes: range, gates: union ? undefined : gatesPerHead(config, d.queryHeads) };
}

/**
 * Queries per row range of a chunk of `slots` KV slots: as many whole scoring tiles as keep the
 * range's block importance (slots × rows × blocks floats) within `p.rangeBytes`, at least one tile.
 */
export function rangeRowsFor(d: AttentionDims, p: NsaPlan, slots: number): number {
  const tile = p.score.tile.rows;
  const rows = Math.max(tile, Math.floor(p.rangeBytes / (4 * slots * p.blocks * tile)) * tile);
  return Math.max(1, Math.min(rows, d.querySeq));
}

/**
 * NSA's selection as a GPU step: pools each chunk's compression windows, then, one row range at a
 * time, scores the range's queries against the windows (tiled) and selects each (KV slot, query) row.
 * With a decoder's `pool` the windows are kept across steps: only windows `pool.first …` are
 * pooled (into the pool's buffers), the earlier ones are read as they are.
 */
export function nsaSelectionStep(d: AttentionDims, config: NsaConfig, p: NsaPlan, pool?: DecoderPool): GpuSelectionStep {
  const quest = p.score.quest;
  if (pool && quest && !pool.bounds) throw new Error('nsa: a Quest-scored decoder needs pooled key bounds');
  return {
    layout: { kind: 'block', blockSize: config.selectionBlock, headScope: 'kv', rows: d.querySeq, queryBlockSize: 1 },
    stride: p.stride,
    async encodeChunk(e) {
      const slots = e.chunk.slots;
      const rangeRows = rangeRowsFor(d, p, slots);
      // A decode step: its few queries in one row range, scored window-parallel (probabilities, never logits).
      const decode = usesDecodeScoring(d, quest) && rangeRows === d.querySeq;
      // The decode kernels leave probabilities, never logits: the top-n kernels read them as such.
      const selectOptions = decode ? { ...p.kernel, logits: false } : p.kernel;
      const [poolKernel, score, select] = await Promise.all([
        e.pipeline(windowPoolWgsl({ bounds: quest })),
        e.pipeline(nsaScoreWgsl(p.score)),
        e.pipeline(nsaSelectWgsl(selectOptions)),
      ]);
      const pooledFloats = Math.max(1, slots * p.windows * d.headDim);
      const means = pool ? pool.means[e.index]! : e.scratch(4 * pooledFloats);
      const bounds = quest ? (pool ? pool.bounds![e.index]! : e.scratch(8 * pooledFloats)) : undefined;
      const first = Math.min(pool?.first ?? 0, p.windows);
      if (p.windows > first) {
        const [px, py] = dispatchGrid(Math.ceil((slots * (p.windows - first) * d.headDim) / WINDOW_POOL_THREADS));
        const params = e.uniform(WINDOW_POOL_PARAMS, { keyStride: chunkKeyStride(e.chunk, d), length: config.compressionBlock, stride: config.compressionStride, windows: p.windows - first, first, slots, tilesX: px, dim: d.headDim });
        e.dispatch(poolKernel, [params, e.chunk.k, means, bounds], px, py);
      }
      const importance = e.scratch(4 * Math.max(1, slots * rangeRows * p.blocks));
      const geometry = {
        querySeq: d.querySeq,
        queryOffset: d.queryOffset,
        slots,
        windows: p.windows,
        compressionBlock: config.compressionBlock,
        compressionStride: config.compressionStride,
        selectionBlock: config.selectionBlock,
        blocks: p.blocks,
      };
      for (let rowStart = 0; rowStart < d.querySeq; rowStart += rangeRows) {
        const rows = Math.min(rangeRows, d.querySeq - rowStart);
        if (p.windows > 0 && decode) {
          const [logitKernel, reduce] = await Promise.all([e.pipeline(nsaDecodeLogitsWgsl({ headDim: d.headDim, groupSize: d.groupSize, quest })), e.pipeline(nsaDecodeReduceWgsl({ groupSize: d.groupSize }))]);
          const logits = e.scratch(4 * slots * d.groupSize * d.querySeq * p.windows);
          const windowTiles = Math.ceil(p.windows / NSA_DECODE_LOGIT_THREADS);
          const values = { ...geometry, windowTiles, rangeRows: rows, scale: d.scale };
          const [lx, ly] = dispatchGrid(slots * windowTiles);
          e.dispatch(logitKernel, [e.uniform(NSA_DECODE_SCORE_PARAMS, { ...values, tilesX: lx }), e.chunk.q, quest ? bounds : means, logits], lx, ly);
          const [rx, ry] = dispatchGrid(slots * d.querySeq);
          e.dispatch(reduce, [e.uniform(NSA_DECODE_SCORE_PARAMS, { ...values, tilesX: rx }), logits, importance], rx, ry);
        } else if (p.windows > 0) {
          const rowTiles = Math.ceil(rows / p.score.tile.rows);
          const [sx, sy] = dispatchGrid(slots * rowTiles);
          const params = e.uniform(NSA_SCORE_PARAMS, { ...geometry, tilesX: sx, rowStart, rangeRows: rows, rowTiles, scale: d.scale });
          e.dispatch(score, [params, e.chunk.q, quest ? bounds : means, importance], sx, sy);
        }
        // A decode step's few rows: one workgroup per row (the per-thread kernel walks a row serially).
        const perRow = decode && p.blocks <= NSA_SELECT_ROW_BLOCKS;
        const [x, y] = dispatchGrid(perRow ? slots * rows : Math.ceil((slots * rows) / NSA_SELECT_THREADS));
        const params = e.uniform(NSA_SELECT_PARAMS, {
          ...geometry,
          tilesX: x,
          rowStart,
          rangeRows: rows,
          selectedBlocks: config.selectedBlocks,
          window: config.window,
          forceInitial: config.forceInitial ? 1 : 0,
          forceLocal: config.forceLocal,
          stride: p.stride,
          unionWindow: config.combine === 'union' ? 1 : 0,
        });
        e.dispatch(perRow ? await e.pipeline(nsaSelectRowWgsl(selectOptions)) : select, [params, importance, e.target.bounds, e.target.indices], x, y);
      }
    },
  };
}

/** Queries per shared window row: one tile of the backend's rows executor. */
export const SHARED_QUERY_BLOCK = 64;

/**
 * Entries per rest row: R_t = U_t \ S_b holds at most the n picks plus the window blocks outside
 * S_b, W(t) \ S_b = [fw(t), fw(t_last)) ∪ (IC(t_first), IC(t)], each part at most
 * ⌊(QB − 1) / l′⌋ + 1 blocks. That bound needs S_b non-empty for every query block, which holds
 * when w ≥ QB (then fw(t_last) ≤ IC(t_first)); otherwise a rest row can be the whole union row.
 * At the defaults (n 16, l′ 64, w 512, QB 64) rows take 18 entries instead of the union's 25,
 * so the key-block executor's partials (per row × stride) need ~30 % fewer row windows.
 */
function restStride(config: NsaConfig, p: NsaPlan): number {
  if (config.window < SHARED_QUERY_BLOCK) return p.stride;
  const outside = 2 * (Math.floor((SHARED_QUERY_BLOCK - 1) / config.selectionBlock) + 1);
  return Math.min(p.stride, p.kernel.maxPicks + outside);
}

/** A step that derives a selection from the union rows (`window-split-wgsl.ts`; mode 0: rest, 1: shared). */
function splitStep(d: AttentionDims, config: NsaConfig, p: NsaPlan, union: GpuSelection, mode: 0 | 1): GpuSelectionStep {
  const shared = mode === 1;
  const rowsPerSlot = shared ? Math.ceil(d.querySeq / SHARED_QUERY_BLOCK) : d.querySeq;
  const stride = shared ? Math.min(p.blocks, Math.ceil(config.window / config.selectionBlock) + 1) : restStride(config, p);
  return {
    layout: { kind: 'block', blockSize: config.selectionBlock, headScope: 'kv', rows: rowsPerSlot, queryBlockSize: shared ? SHARED_QUERY_BLOCK : 1 },
    stride,
    async encodeChunk(e) {
      const pipeline = await e.pipeline(windowSplitWgsl());
      const rows = e.chunk.slots * rowsPerSlot;
      const [x, y] = dispatchGrid(Math.ceil(rows / WINDOW_SPLIT_THREADS));
      const params = e.uniform(WINDOW_SPLIT_PARAMS, {
        rows,
        querySeq: d.querySeq,
        queryOffset: d.queryOffset,
        tilesX: x,
        selectionBlock: config.selectionBlock,
        window: config.window,
        queryBlock: SHARED_QUERY_BLOCK,
        mode,
        strideIn: p.stride,
        strideOut: stride,
      });
      const source = union.chunks[e.index]!;
      e.dispatch(pipeline, [params, source.bounds, source.indices, e.target.bounds, e.target.indices], x, y);
    },
  };
}

/**
 * NSA's union rows on a resident call: the selection step writes each query's union row (the
 * method's selection, returned for readback and density); the split kernel divides it into the
 * per-query rest and the window blocks shared by each block of 64 queries; the backend's executor
 * attends the rest into the resident's out / lse (key-block mode: one query per row) and the shared
 * rows into a branch buffer (rows mode: 64 queries × G per workgroup); the merge combines the two
 * softmaxes in place. Without a window, and for calls the executor runs split-K (decode steps),
 * the union rows are attended directly. The caller frees the returned selection.
 */
export async function runUnionRows(backend: GpuBackend, resident: ResidentAttention, config: NsaConfig, p: NsaPlan, step: GpuSelectionStep): Promise<{ selection: GpuSelection; selectionMs: number; attentionMs: number }> {
  const d = resident.dims;
  // Without a window, or where the executor splits each row's keys over workgroups anyway (split-K:
  // decode steps), the union rows are attended as they are: the rest / shared split only pays off
  // for the key-block executor's 64-query tiles, and costs a decode step three more calls.
  if (config.window === 0 || backend.executorFor(step.layout, d) === 'split-k') return selectThenAttend(backend, resident, step);
  const { selection, ms } = await backend.runSelection(resident, step);
  const parts: GpuSelection[] = [];
  const owned: ResidentChunk['out'][] = [];
  try {
    const rest = await backend.runSelection(resident, splitStep(d, config, p, selection, 0));
    parts.push(rest.selection);
    const shared = await backend.runSelection(resident, splitStep(d, config, p, selection, 1));
    parts.push(shared.selection);
    const make = (bytes: number) => {
      const buffer = backend.scratchBuffer(bytes);
      owned.push(buffer);
      return buffer;
    };
    const targets = resident.chunks.map((c) => ({ out: make(4 * c.slots * d.groupSize * d.querySeq * d.valueDim), lse: make(4 * c.slots * d.groupSize * d.querySeq) }));
    const restMs = await backend.runSparse(resident, rest.selection);
    const sharedMs = await backend.runSparse(resident, shared.selection, targets);
    const mergeMs = await backend.runKernels(resident, async (e) => {
      const pipeline = await e.pipeline(branchMergeWgsl());
      const rows = e.chunk.slots * d.groupSize * d.querySeq;
      for (const [mode, count] of [[0, rows * d.valueDim], [1, rows]] as const) {
        const [x, y] = dispatchGrid(Math.ceil(count / BRANCH_MERGE_THREADS));
        const params = e.uniform(BRANCH_MERGE_PARAMS, { count, rowFloats: d.valueDim, tilesX: x, mode });
        e.dispatch(pipeline, [params, e.chunk.out, e.chunk.lse, targets[e.index]!.out, targets[e.index]!.lse], x, y);
      }
    });
    return { selection, selectionMs: ms + rest.ms + shared.ms, attentionMs: restMs + sharedMs + mergeMs };
  } catch (error) {
    backend.releaseSelection(selection);
    throw error;
  } finally {
    for (const part of parts) backend.releaseSelection(part);
    backend.discard(...owned);
  }
}

/** The CPU method's diagnostics, which depend on the geometry only (not on the picks). */
function diagnostics(d: AttentionDims, config: NsaConfig, windows: number): Record<string, number> {
  let visible = 0;
  let selected = 0;
  for (let i = 0; i < d.querySeq; i++) {
    const t = d.queryOffset + i;
    visible += Math.min(windows, visibleWindows(t, config.compressionBlock, config.compressionStride));
    selected += Math.min(config.selectedBlocks, Math.floor(t / config.selectionBlock) + 1);
  }
  const rows = Math.max(1, d.querySeq);
  const union = config.combine === 'union';
  return {
    meanVisibleCompressed: visible / rows,
    meanSelectedBlocks: selected / rows,
    compressedKvBytesRead: d.batch * d.kvHeads * visible * 4 * (d.headDim + (union ? 0 : d.valueDim)),
    ...(union ? {} : { compressedPairs: d.batch * d.queryHeads * visible }),
  };
}

/** Pairs of the sliding-window branch: each query head's query t attends min(w, t + 1) keys. */
function windowPairs(d: AttentionDims, window: number): number {
  let pairs = 0;
  if (window > 0) for (let i = 0; i < d.querySeq; i++) pairs += Math.min(window, d.queryOffset + i + 1);
  return d.batch * d.queryHeads * pairs;
}

/** The windows NSA's decoder keeps pooled (the CPU decoder's): keys, Quest bounds, and values for 'gated'. */
export function nsaPooling(config: NsaConfig): PoolingSpec {
  return { length: config.compressionBlock, stride: config.compressionStride, values: config.combine === 'gated', bounds: config.compressionScore === 'quest' };
}

/** NSA (union combination) with compression, selection and attention on the GPU; same id, config schema and selection as the CPU method. */
export const gpuNsaMethod: GpuMethodDefinition = {
  id: nsaMethod.id,
  family: nsaMethod.family,
  cpu: nsaMethod,
  create(backend, rawConfig) {
    const config = parseConfig(nsaMethod.id, nsaConfigSchema, rawConfig ?? {});
    const decodePlan = (d: AttentionDims): DecodeStepPlan => {
      const p = nsaPlan(backend, d, config);
      const gates = p.gates;
      return {
        extraBytesPerSlot: p.scratchBytesPerSlot,
        run: (resident, pool) => {
          const step = nsaSelectionStep(d, config, p, pool);
          return gates ? runGatedBranches(backend, resident, config, step, p.windows, gates, pool) : runUnionRows(backend, resident, config, p, step);
        },
        extraPairs: gates ? windowPairs(d, config.window) : 0,
        diagnostics: diagnostics(d, config, p.windows),
      };
    };
    return {
      methodId: nsaMethod.id,
      async prefill(input) {
        const d = validateAttentionInput(input);
        if (!d.causal) throw new ConfigError('nsa: causal must be true (the method selects among past keys only), got causal: false');
        const p = nsaPlan(backend, d, config);
        const gates = p.gates;
        const step = nsaSelectionStep(d, config, p);
        return residentPrefill(backend, input, d, config, p, (resident) => (gates ? runGatedBranches(backend, resident, config, step, p.windows, gates) : runUnionRows(backend, resident, config, p, step)));
      },
      createDecoder: (shape, options?: GpuDecoderOptions) => createGpuCachedDecoder(backend, shape, nsaPooling(config), decodePlan, options),
      decodeResident: async (view) => residentDecodeStepper(backend, view, nsaPooling(config), decodePlan(view.dims)),
      async runResident(resident, options) {
        const d = resident.dims;
        if (!d.causal) throw new ConfigError('nsa: causal must be true (the method selects among past keys only), got causal: false');
        const p = nsaPlan(backend, d, config);
        const step = nsaSelectionStep(d, config, p);
        return residentCall(backend, options, async () => {
          const { selection, selectionMs, attentionMs } = p.gates
            ? await runGatedBranches(backend, resident, config, step, p.windows, p.gates)
            : await runUnionRows(backend, resident, config, p, step);
          try {
            // KV-head rows serve the G query heads of their group. Every union row holds its current
            // block; a gated selection does when forceLocal ≥ 1 (otherwise its pairs need the picks: no density).
            // (And the density costs a count pass and a readback: only when asked for.)
            if ((config.combine === 'gated' && config.forceLocal === 0) || options?.density === false) return { selectionMs, attentionMs };
            const entries = await countSelectionEntries(backend, resident, selection);
            const selected = d.groupSize * entries * config.selectionBlock - d.batch * d.queryHeads * currentBlockShortfall(d, config.selectionBlock);
            const pairs = selected + (config.combine === 'gated' ? windowPairs(d, config.window) : 0);
            return { selectionMs, attentionMs, density: pairs / densePairCount(d) };
          } finally {
            backend.releaseSelection(selection);
          }
        });
      },
    };
  },
};

/**
 * A prefill on the GPU: upload, `run` (selection, attention and merges on the device), read the
 * output, lse and the selection (the union rows, or the gated selected branch's rows).
 */
async function residentPrefill(
  backend: GpuBackend,
  input: AttentionInput,
  d: AttentionDims,
  config: NsaConfig,
  p: NsaPlan,
  run: (resident: ResidentAttention) => Promise<{ selection: GpuSelection; selectionMs: number; attentionMs: number }>,
): Promise<AttentionResult> {
  const resident = backend.upload(input, d, p.scratchBytesPerSlot);
  try {
    const result = await run(resident);
    try {
      const { output, lse, selection } = await backend.readResults(resident, result.selection);
      if (p.gates) for (const x of output.data) if (!Number.isFinite(x)) throw new NumericError('nsa: gated output is not finite (check the gates)');
      const pairs = countPairs(selection, d) + (p.gates ? windowPairs(d, config.window) : 0);
      const stats = sparseStats(d, pairs, true, result.selectionMs, result.attentionMs);
      return {
        output,
        lse,
        selection,
        stats,
        backend: backend.info,
        diagnostics: { ...diagnostics(d, config, p.windows), selectionShare: selectionShare(result.selectionMs, result.attentionMs) },
      } as AttentionResult;
    } finally {
      backend.releaseSelection(result.selection);
    }
  } finally {
    backend.release(resident);
  }
}
