/**
 * The hierarchical (HISA-style) token indexer on the GPU: block pooling, the two-stage search and
 * the exact sparse executor on the device (spec §13; the CPU method is `hierarchical-indexer.ts`).
 *
 *   pool    mean(K_j) for every complete block                   (`window-pool-wgsl.ts`, l = d = B)
 *   stage 1 q̄ · mean_j, 64 queries × 64 blocks per tile            (`indexer-score-tile-wgsl.ts`)
 *   search  top-c blocks, then top-K tokens                      (`indexer-select-wgsl.ts`)
 *   attend  softmax over the row's K tokens, per query head       (backend's sparse executor)
 *
 * Attention runs key-block-major where the backend's key-block executor takes the call (prefill
 * of ≥ 64 queries) and the GQA group is at most 2 (see `indexerAttention`): the search also writes each row's tokens as the kept blocks
 * holding them plus a key mask per block, so each block's keys are read once per 64 queries that
 * kept it instead of once per query (the token rows executor's tile holds one query row per
 * workgroup there). Output, lse and the returned token selection are the same.
 *
 * Differences from the CPU method: scores are float32 (the CPU's dot products sum in float64), so
 * a token whose score ties the K-th within float32 rounding can be swapped for its near-twin; the
 * `indexerIoU` diagnostic (a flat scan of every visible key for sampled queries) is not computed.
 */
import { ConfigError, densePairCount, parseConfig, validateAttentionInput, type AttentionDims } from '@sparse-attn/core';
import { blockListPipelines, chunkKeyStride, dispatchGrid, recordBlockLists, residentCall, type BlockListRecorder, type GpuBackend, type GpuMethodDefinition, type GpuSelection, type GpuSelectionChunk, type GpuSelectionStep, type ResidentAttention, type TileShape, selectThenAttend, type GpuDecoderOptions } from '@sparse-attn/backend-gpu';
import { completeWindows } from '../block-means.js';
import { blockPooling } from '../cached-decoder.js';
import { hierarchicalIndexerConfigSchema, hierarchicalIndexerMethod, type HierarchicalIndexerConfig } from '../hierarchical-indexer.js';
import { selectionShare } from '../method-helpers.js';
import { createGpuCachedDecoder, residentDecodeStepper, type DecodeStepPlan, type DecoderPool } from './gpu-cached-decoder.js';
import { forSlotGroups } from './slot-groups.js';
import { assertWorkgroupFits, countSelectionEntries } from './gpu-helpers.js';
import { INDEXER_CANDIDATE_PARAMS, indexerCandidateScoreWgsl, indexerCandidateWorkgroupBytes, type IndexerCandidateKernelOptions } from './indexer-candidate-score-wgsl.js';
import { INDEXER_DIRECT_BLOCKS, INDEXER_DIRECT_PARAMS, indexerDirectScoreWgsl, indexerDirectWorkgroupBytes, type IndexerDirectKernelOptions } from './indexer-direct-score-wgsl.js';
import { INDEXER_SCORE_PARAMS, indexerScoreWgsl, indexerScoreWorkgroupBytes, type IndexerScoreKernelOptions } from './indexer-score-tile-wgsl.js';
import { INDEXER_SELECT_PARAMS, indexerMaskWords, indexerSelectWgsl, indexerSelectWorkgroupBytes, type IndexerSelectKernelOptions } from './indexer-select-wgsl.js';
import { WINDOW_POOL_PARAMS, WINDOW_POOL_THREADS, windowPoolWgsl } from './window-pool-wgsl.js';

/** Geometry of one indexer call on the GPU. */
export interface IndexerPlan {
  /** The pick / select passes' shape (the phase is given per pass). */
  readonly kernel: Omit<IndexerSelectKernelOptions, 'phase'>;
  readonly score: IndexerScoreKernelOptions;
  /** The block-major stage 2's scoring kernel. */
  readonly candidate: IndexerCandidateKernelOptions;
  /** Both stages' scoring for calls of fewer than 64 queries (decode steps): a workgroup per (row, 64 blocks) and per (row, kept block). */
  readonly direct: { readonly blocks: IndexerDirectKernelOptions; readonly tokens: IndexerDirectKernelOptions };
  /** Most bytes of the block-major stage 2's candidate scores of one row range (all slots of a chunk). */
  readonly candidateBytes: number;
  readonly pooled: number;
  /** Blocks of the call, ceil(keySeq / B). */
  readonly blocks: number;
  /** Tokens per CSR row, min(K, keySeq). */
  readonly stride: number;
  /** Bytes of the largest per-KV-slot buffer: the CSR rows (Sq · stride u32) or the pooled means. */
  readonly scratchBytesPerSlot: number;
  /** Most bytes of the stage-1 block scores of one row range (all slots of a chunk). */
  readonly rangeBytes: number;
}

/** Default cap on the stage-1 scores of one row range (as NSA's: 2048 queries of 32 slots × 1024 blocks). */
export const INDEXER_RANGE_BYTES = 256 * 1024 * 1024;

const SCORE_TILE: TileShape = { rows: 64, chunk: 16 };

/** Checks that the kernels fit the device and sizes the buffers (throws `ConfigError` before any GPU work). */
export function indexerPlan(backend: GpuBackend, d: AttentionDims, config: HierarchicalIndexerConfig, rangeBytes = INDEXER_RANGE_BYTES): IndexerPlan {
  const maxBlocks = Math.max(1, Math.ceil(d.keySeq / config.blockSize));
  const maxKept = Math.min(config.candidateBlocks, maxBlocks);
  const kernel = { headDim: d.headDim, groupSize: d.groupSize, maxBlocks, maxKept, maxCandidates: maxKept * config.blockSize };
  // The pick pass holds a row's block scores; the select pass (writing block rows: its larger variant) its candidates' scores.
  const selectBytes = Math.max(indexerSelectWorkgroupBytes({ ...kernel, phase: 'pick' }), indexerSelectWorkgroupBytes({ ...kernel, phase: 'select', blockRows: { blockSize: config.blockSize } }));
  assertWorkgroupFits('hierarchical-indexer', backend, selectBytes, `${maxKept} candidate blocks of ${config.blockSize} keys and ${maxBlocks} blocks per row`);
  const score: IndexerScoreKernelOptions = { headDim: d.headDim, groupSize: d.groupSize, tile: SCORE_TILE };
  assertWorkgroupFits('hierarchical-indexer', backend, indexerScoreWorkgroupBytes(score), 'the stage-1 tile of 64 queries × 64 blocks');
  const candidate: IndexerCandidateKernelOptions = { headDim: d.headDim, groupSize: d.groupSize, tile: SCORE_TILE };
  assertWorkgroupFits('hierarchical-indexer', backend, indexerCandidateWorkgroupBytes(candidate), 'the stage-2 tile of 64 rows × 64 keys');
  const direct = { blocks: { headDim: d.headDim, groupSize: d.groupSize, maxKept, mode: 'blocks' }, tokens: { headDim: d.headDim, groupSize: d.groupSize, maxKept, mode: 'tokens' } } as const;
  assertWorkgroupFits('hierarchical-indexer', backend, indexerDirectWorkgroupBytes(direct.tokens), `the group query of ${d.headDim} channels`);
  const pooled = completeWindows(d.keySeq, config.blockSize, config.blockSize);
  const stride = Math.max(1, Math.min(config.topK, d.keySeq));
  const range = Math.min(rangeBytes, backend.context.maxBinding);
  if (4 * SCORE_TILE.rows * maxBlocks > range) {
    throw new ConfigError(`hierarchical-indexer: one tile of ${SCORE_TILE.rows} queries × ${maxBlocks} blocks needs ${4 * SCORE_TILE.rows * maxBlocks} bytes of block scores, above ${range} (use larger blocks)`);
  }
  return { kernel, score, candidate, direct, candidateBytes: Math.min(4 * rangeBytes, backend.context.maxBinding), pooled, blocks: maxBlocks, stride, scratchBytesPerSlot: 4 * Math.max(pooled * d.headDim, d.querySeq * stride), rangeBytes: range };
}

/** Queries per row range of a chunk of `slots` KV slots: whole 64-query tiles whose block scores fit `p.rangeBytes`. */
export function indexerRangeRows(d: AttentionDims, p: IndexerPlan, slots: number): number {
  const tile = SCORE_TILE.rows;
  const rows = Math.max(tile, Math.floor(p.rangeBytes / (4 * slots * p.blocks * tile)) * tile);
  return Math.max(1, Math.min(rows, d.querySeq));
}

/**
 * The indexer's selection as a GPU step (token rows per KV slot and query), one row range at a
 * time. With a decoder's `pool` the block means are kept across steps: only blocks `pool.first …`
 * are pooled (into the pool's buffers). With `blockRows` (chunk index, its KV slots → buffers) the
 * search also writes the masked block rows the key-block executor runs (see {@link indexerAttention}).
 * With `blockMajor` stage 2 runs key-block-major: a pick pass writes each row's kept blocks,
 * backend-gpu's list passes group the rows per kept block, `indexer-candidate-score-wgsl.ts`
 * scores each block's keys once per 64 rows that kept it, and a select pass takes the top K of
 * each row's candidate scores (instead of one workgroup per row reading its c · B candidate keys).
 */
export function indexerSelectionStep(d: AttentionDims, config: HierarchicalIndexerConfig, p: IndexerPlan, pool?: DecoderPool, blockRows?: (index: number, slots: number) => GpuSelectionChunk, blockMajor = false): GpuSelectionStep {
  return {
    layout: { kind: 'token', blockSize: 1, headScope: 'kv', rows: d.querySeq, queryBlockSize: 1 },
    stride: p.stride,
    async encodeChunk(e) {
      const kernel = blockRows ? { ...p.kernel, blockRows: { blockSize: config.blockSize } } : p.kernel;
      const [poolKernel, score, pick, select] = await Promise.all([
        e.pipeline(windowPoolWgsl({ bounds: false })),
        e.pipeline(indexerScoreWgsl(p.score)),
        e.pipeline(indexerSelectWgsl({ ...p.kernel, phase: 'pick' })),
        e.pipeline(indexerSelectWgsl({ ...kernel, phase: 'select' })),
      ]);
      const slots = e.chunk.slots;
      // Rows between the KV slots of the chunk's k (a KV cache's capacity; keySeq for contiguous keys).
      const keyStride = chunkKeyStride(e.chunk, d);
      const blockRowBuffers = blockRows?.(e.index, slots);
      const means = pool ? pool.means[e.index]! : e.scratch(4 * Math.max(1, slots * p.pooled * d.headDim));
      const first = Math.min(pool?.first ?? 0, p.pooled);
      if (p.pooled > first) {
        const [px, py] = dispatchGrid(Math.ceil((slots * (p.pooled - first) * d.headDim) / WINDOW_POOL_THREADS));
        const params = e.uniform(WINDOW_POOL_PARAMS, { keyStride, length: config.blockSize, stride: config.blockSize, windows: p.pooled - first, first, slots, tilesX: px, dim: d.headDim });
        e.dispatch(poolKernel, [params, e.chunk.k, means], px, py);
      }
      const kept = Math.max(1, p.kernel.maxKept);
      // The candidate scores of a range (slots · rows · kept · B u32) must fit their cap too.
      const candidateRows = Math.max(SCORE_TILE.rows, Math.floor(p.candidateBytes / (4 * slots * kept * config.blockSize * SCORE_TILE.rows)) * SCORE_TILE.rows);
      const rangeRows = Math.min(indexerRangeRows(d, p, slots), candidateRows);
      const blockScores = e.scratch(4 * Math.max(1, slots * rangeRows * p.blocks));
      const candBounds = e.scratch(8 * slots * rangeRows);
      const candIndices = e.scratch(4 * slots * rangeRows * kept);
      const candKeys = e.scratch(4 * slots * rangeRows * kept * config.blockSize);
      const lists = blockMajor
        ? {
            candidates: await e.pipeline(indexerCandidateScoreWgsl(p.candidate)),
            passes: await blockListPipelines((code) => e.pipeline(code)),
            items: e.scratch(4 * slots * rangeRows * kept),
          }
        : undefined;
      // Calls of few rows (decode steps) score both stages row-parallel instead of in 64-row tiles.
      const direct = blockMajor ? undefined : { blocks: await e.pipeline(indexerDirectScoreWgsl(p.direct.blocks)), tokens: await e.pipeline(indexerDirectScoreWgsl(p.direct.tokens)) };
      const recorder: BlockListRecorder = { scratch: (bytes) => e.scratch(bytes), uniform: (fields, values) => e.uniform(fields, values), run: (_name, pipeline, bindings, [gx, gy]) => e.dispatch(pipeline, bindings, gx, gy) };
      const geometry = { querySeq: d.querySeq, queryOffset: d.queryOffset, slots, pooled: p.pooled, blockSize: config.blockSize, blocks: p.blocks, topK: config.topK };
      for (let rowStart = 0; rowStart < d.querySeq; rowStart += rangeRows) {
        const rows = Math.min(rangeRows, d.querySeq - rowStart);
        const directParams = (grid: readonly [number, number], parts: number) =>
          e.uniform(INDEXER_DIRECT_PARAMS, { ...geometry, keySeq: d.keySeq, keyStride, rangeRows: rows, rowStart, rows: slots * rows, tilesX: grid[0], parts });
        if (p.pooled > 0) {
          if (direct) {
            const parts = Math.ceil(p.pooled / INDEXER_DIRECT_BLOCKS);
            const grid = dispatchGrid(slots * rows * parts);
            e.dispatch(direct.blocks, [directParams(grid, parts), e.chunk.q, means, blockScores], grid[0], grid[1]);
          } else {
            const rowTiles = Math.ceil(rows / SCORE_TILE.rows);
            const [sx, sy] = dispatchGrid(slots * rowTiles);
            e.dispatch(score, [e.uniform(INDEXER_SCORE_PARAMS, { ...geometry, tilesX: sx, rowStart, rangeRows: rows, rowTiles }), e.chunk.q, means, blockScores], sx, sy);
          }
        }
        const [x, y] = dispatchGrid(slots * rows);
        const params = e.uniform(INDEXER_SELECT_PARAMS, { ...geometry, tilesX: x, candidateBlocks: config.candidateBlocks, stride: p.stride, keySeq: d.keySeq, rowStart, rangeRows: rows });
        const outputs = [e.target.bounds, e.target.indices, blockRowBuffers?.bounds, blockRowBuffers?.indices, blockRowBuffers?.masks];
        e.dispatch(pick, [params, undefined, undefined, blockScores, undefined, undefined, undefined, undefined, undefined, candBounds, candIndices], x, y);
        if (lists) {
          const window = { rowStart: 0, rows: slots * rows, stride: kept, selRows: rows, blocks: p.blocks, itemsPerTile: SCORE_TILE.rows, vectors: 1, queryBlockSize: 1, querySeq: d.querySeq, groupSize: d.groupSize, scopeKv: true };
          // Unsorted: the scoring kernel walks each block's keys whole for every row (no causal stop).
          const built = recordBlockLists(recorder, lists.passes, { bounds: candBounds, indices: candIndices }, lists.items, window, { sort: false });
          const tiles = dispatchGrid(built.maxTiles);
          const candidateParams = built.params(tiles, INDEXER_CANDIDATE_PARAMS, { rangeRows: rows, queryStart: rowStart, keySeq: d.keySeq, keyStride, blockSize: config.blockSize });
          e.dispatch(lists.candidates, [candidateParams, e.chunk.q, e.chunk.k, built.listMeta, lists.items, candKeys], tiles[0], tiles[1]);
        } else {
          const grid = dispatchGrid(slots * rows * kept);
          e.dispatch(direct!.tokens, [directParams(grid, kept), e.chunk.q, e.chunk.k, candBounds, candIndices, candKeys], grid[0], grid[1]);
        }
        e.dispatch(select, [params, undefined, undefined, undefined, ...outputs, candBounds, candIndices, candKeys], x, y);
      }
    },
  };
}

/**
 * The indexer's search step and the attention that follows it on one resident call. Where the
 * backend's key-block executor takes the block layout (`executorFor`), the step also writes the
 * masked block rows (buffers per chunk, made on first use) and `attend` runs the executor over
 * them; otherwise `attend` runs the token selection. `release` frees the block rows (`attend`
 * does too); call it when the step fails before `attend`.
 */
export function indexerAttention(backend: GpuBackend, d: AttentionDims, config: HierarchicalIndexerConfig, p: IndexerPlan): { step: GpuSelectionStep; attend: (resident: ResidentAttention, selection: GpuSelection) => Promise<number>; release: () => void } {
  const layout = { kind: 'block', blockSize: config.blockSize, headScope: 'kv', rows: d.querySeq, queryBlockSize: 1 } as const;
  // The key-block executor computes every key of each kept block (4× the picked pairs at the
  // defaults) at dense-like tile efficiency whatever the group size; the token rows executor gives
  // each row a tile of 16 rows of which the G query heads are live. On the H100 at 64k the token
  // rows took 565 ms at G = 1 and 143 ms at G = 4, the masked blocks 200 and 181 ms: masked below G = 3.
  const keyBlocks = d.groupSize <= 2 && backend.executorFor(layout, d) === 'key-blocks';
  const words = indexerMaskWords(config.blockSize);
  const kept = Math.max(1, p.kernel.maxKept);
  const chunks = new Map<number, GpuSelectionChunk & { readonly masks: NonNullable<GpuSelectionChunk['masks']> }>();
  const release = () => {
    for (const c of chunks.values()) backend.discard(c.bounds, c.indices, c.masks);
    chunks.clear();
  };
  const rowsOf = (index: number, slots: number): GpuSelectionChunk => {
    let c = chunks.get(index);
    if (!c) {
      const rows = slots * d.querySeq;
      c = { rows, bounds: backend.scratchBuffer(8 * rows), indices: backend.scratchBuffer(4 * rows * kept), masks: backend.scratchBuffer(4 * rows * kept * words) };
      chunks.set(index, c);
    }
    return c;
  };
  // Stage 2 key-block-major for prefill-sized calls (a decode step's few rows share no blocks).
  const step = indexerSelectionStep(d, config, p, undefined, keyBlocks ? rowsOf : undefined, d.querySeq >= 64);
  const attend = async (resident: ResidentAttention, selection: GpuSelection): Promise<number> => {
    if (!keyBlocks) return backend.runSparse(resident, selection);
    try {
      const masked = resident.chunks.map((_, i) => chunks.get(i)!);
      return await backend.runSparse(resident, { layout: { ...selection.layout, ...layout }, stride: kept, chunks: masked, maskWords: words });
    } finally {
      release();
    }
  };
  return { step, attend, release };
}

/** The CPU's `scannedShare`: keys scored in stage 2 (or attended whole) over visible keys; geometry only. */
function scannedShare(d: AttentionDims, config: HierarchicalIndexerConfig): number {
  let scanned = 0;
  let visible = 0;
  for (let i = 0; i < d.querySeq; i++) {
    const t = d.queryOffset + i;
    visible += t + 1;
    if (t + 1 <= config.topK) {
      scanned += t + 1;
      continue;
    }
    const current = Math.floor(t / config.blockSize);
    const kept = Math.min(config.candidateBlocks, current + 1);
    scanned += (kept - 1) * config.blockSize + (t + 1 - current * config.blockSize);
  }
  return visible > 0 ? scanned / visible : 0;
}

/**
 * KV slots whose token rows (Sq · stride u32 each) fit one binding; `runResident` works through
 * larger chunks that many slots at a time (`slot-groups.ts`). Throws when one slot alone does not fit.
 */
export function indexerSlotsPerGroup(backend: GpuBackend, d: AttentionDims, p: IndexerPlan): number {
  const perSlot = 4 * d.querySeq * p.stride;
  if (perSlot > backend.context.maxBinding) {
    throw new ConfigError(`hierarchical-indexer: one KV slot's token rows need ${perSlot} bytes, above the device's largest binding (${backend.context.maxBinding}); use a smaller topK or fewer queries per call`);
  }
  return Math.max(1, Math.floor(backend.context.maxBinding / perSlot));
}

/** The hierarchical indexer with pooling, both search stages and attention on the GPU. */
export const gpuHierarchicalIndexerMethod: GpuMethodDefinition = {
  id: hierarchicalIndexerMethod.id,
  family: hierarchicalIndexerMethod.family,
  cpu: hierarchicalIndexerMethod,
  create(backend, rawConfig) {
    const config = parseConfig(hierarchicalIndexerMethod.id, hierarchicalIndexerConfigSchema, rawConfig ?? {});
    const pooling = blockPooling(config.blockSize);
    const decodePlan = (d: AttentionDims): DecodeStepPlan => {
      const p = indexerPlan(backend, d, config);
      return {
        extraBytesPerSlot: p.scratchBytesPerSlot,
        run: (resident, pool) => selectThenAttend(backend, resident, indexerSelectionStep(d, config, p, pool)),
        diagnostics: { scannedShare: scannedShare(d, config) },
      };
    };
    return {
      methodId: hierarchicalIndexerMethod.id,
      async prefill(input) {
        const d = validateAttentionInput(input);
        if (!d.causal) throw new ConfigError('hierarchical-indexer: causal must be true (the method selects among past keys only), got causal: false');
        const p = indexerPlan(backend, d, config);
        const { step, attend, release } = indexerAttention(backend, d, config, p);
        let result;
        try {
          result = await backend.selectionAttention(input, step, { extraBytesPerSlot: p.scratchBytesPerSlot, attend });
        } finally {
          release();
        }
        return { ...result, diagnostics: { scannedShare: scannedShare(d, config), selectionShare: selectionShare(result.stats.selectionMs, result.stats.attentionMs) } };
      },
      createDecoder: (shape, options?: GpuDecoderOptions) => createGpuCachedDecoder(backend, shape, pooling, decodePlan, options),
      decodeResident: async (view) => residentDecodeStepper(backend, view, pooling, decodePlan(view.dims)),
      async runResident(resident, options) {
        const d = resident.dims;
        if (!d.causal) throw new ConfigError('hierarchical-indexer: causal must be true (the method selects among past keys only), got causal: false');
        const p = indexerPlan(backend, d, config);
        return residentCall(backend, options, async () => {
          // A chunk whose token rows exceed one binding (32 slots × 64k × 512 u32 = 4 GiB) runs a group of slots at a time.
          const groups = await forSlotGroups(backend, resident, indexerSlotsPerGroup(backend, d, p), async (group) => {
            const { step, attend, release } = indexerAttention(backend, d, config, p);
            try {
              const { selection, ms: selectionMs } = await backend.runSelection(group, step);
              try {
                const attentionMs = await attend(group, selection);
                // The density's count pass and readback only when asked for.
                return { selectionMs, attentionMs, entries: options?.density === false ? 0 : await countSelectionEntries(backend, group, selection) };
              } finally {
                backend.releaseSelection(selection);
              }
            } finally {
              release();
            }
          });
          const sum = (key: 'selectionMs' | 'attentionMs' | 'entries') => groups.reduce((total, g) => total + g[key], 0);
          // Every token of a row is ≤ t, and a KV row serves its group's G query heads.
          const timings = { selectionMs: sum('selectionMs'), attentionMs: sum('attentionMs') };
          return options?.density === false ? timings : { ...timings, density: (d.groupSize * sum('entries')) / densePairCount(d) };
        });
      },
    };
  },
};
