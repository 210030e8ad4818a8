/**
 * DELTA and TidalDecode at the attention level on the GPU (`backend: 'gpu'`): the same
 * self-selected decode attention as `delta.ts` / `tidal-decode.ts` — each decode query attends to
 * what the selector picks from that query's own scores over the cache — with the KV cache, the
 * scoring, the top-k and the sparse attention all on the device:
 *
 * - DELTA: logits of every query head (`row-logits-wgsl.ts`), their log-sum-exp
 *   (`row-lse-wgsl.ts`), page scores Σ_page max_h p (`page-scores-wgsl.ts`), the last L pages plus
 *   the top K − L older ones (`top-k-rows-wgsl.ts`), one page list shared by every KV head of the
 *   batch; then the backend's exact sparse executor over those pages.
 * - TidalDecode: logits per query head, its top `tokenBudget` tokens (the same top-k kernel with
 *   unit 1 and no recency window); then the sparse executor.
 *
 * Prefill follows the CPU method: `prefill: 'dense'` runs the GPU dense kernel and reports the
 * all-keys selection; `'self-select'` selects every query row as above (rows processed in
 * groups so the logits scratch stays bounded). Decoders keep K/V in the backend's `GpuKVCache`.
 */
import {
  ConfigError,
  densePairCount,
  parseConfig,
  validateAttentionInput,
  validateDecoderStep,
  type AttentionDims,
  type AttentionInput,
  type AttentionResult,
  type DecoderShape,
} from '@sparse-attn/core';
import {
  chunkKeyStride,
  countPairs,
  decoderCache,
  denseStep,
  dispatchGrid,
  lastQueryView,
  residentCall,
  selectionResult,
  type ChunkEncoder,
  type GpuAttentionDecoder,
  type GpuDecoderOptions,
  type GpuAttentionMethod,
  type GpuBackend,
  type GpuMethodDefinition,
  type GpuSelectionChunk,
  type GpuSelectionStep,
  type ResidentAttention,
  type ResidentChunk,
  type ResidentRunOptions,
} from '@sparse-attn/backend-gpu';
import { deltaConfigSchema, deltaMethod, type DeltaConfig } from '../delta.js';
import { denseSelection } from '../self-selected-attention.js';
import { tidalDecodeConfigSchema, tidalDecodeMethod, type TidalDecodeConfig } from '../tidal-decode.js';
import { PAGE_SCORES_PARAMS, pageScoreGroups, pageScoresWgsl } from './page-scores-wgsl.js';
import { ROW_LOGITS_KEYS, ROW_LOGITS_PARAMS, rowLogitsWgsl } from './row-logits-wgsl.js';
import { ROW_LSE_PARAMS, rowLseWgsl } from './row-lse-wgsl.js';
import { TOP_K_ROWS_PARAMS, topKRowsWgsl } from './top-k-rows-wgsl.js';

/** A device buffer (the type of the backend's resident buffers; this package carries no WebGPU types). */
type DeviceBuffer = ResidentChunk['k'];

/** Largest logits scratch buffer (bytes) a selection step allocates; longer prefills go in row groups. */
const LOGITS_SCRATCH_BYTES = 64 * 1024 * 1024;

/** How a GPU selector picks: DELTA's pages or TidalDecode's tokens. */
interface GpuRowSelector {
  readonly kind: 'block' | 'token';
  readonly blockSize: number;
  readonly headScope: 'kv' | 'query';
  /** Entries per selection row at most. */
  stride(keySeq: number): number;
  /** The selection kernels of one resident call (every query row of it). */
  step(backend: GpuBackend, resident: ResidentAttention): GpuSelectionStep;
}

/** Query rows per group so that `bytesPerRow` of scratch per row stays under the limit. */
function rowsPerGroup(backend: GpuBackend, querySeq: number, bytesPerRow: number): number {
  const limit = Math.min(backend.context.maxBinding, LOGITS_SCRATCH_BYTES);
  return Math.max(1, Math.min(querySeq, Math.floor(limit / Math.max(1, bytesPerRow))));
}

/** Records the logits kernel for one chunk's query slots and a group of rows. */
async function encodeLogits(encoder: ChunkEncoder, chunk: ResidentChunk, logits: DeviceBuffer, rowStart: number, rows: number, outSlotBase: number): Promise<void> {
  const d = encoder.dims;
  const pipeline = await encoder.pipeline(rowLogitsWgsl(d.headDim));
  const slots = chunk.slots * d.groupSize;
  const keyTiles = Math.ceil(d.keySeq / ROW_LOGITS_KEYS);
  const [x, y] = dispatchGrid(slots * rows * keyTiles);
  const params = encoder.uniform(ROW_LOGITS_PARAMS, { querySeq: d.querySeq, keySeq: d.keySeq, keyStride: chunkKeyStride(chunk, d), queryOffset: d.queryOffset, rowStart, rows, slots, groupSize: d.groupSize, keyTiles, outSlotBase, tilesX: x, scale: d.scale });
  encoder.dispatch(pipeline, [params, chunk.q, chunk.k, logits], x, y);
}

/** Records the top-k kernel writing a group of rows of one chunk's selection target. */
async function encodeTopK(
  encoder: ChunkEncoder,
  target: GpuSelectionChunk,
  values: DeviceBuffer,
  o: { slots: number; rowStart: number; rows: number; valueSlotBase: number; valueSlotDiv: number; valueStride: number; unit: number; budget: number; recent: number; stride: number },
): Promise<void> {
  const d = encoder.dims;
  const pipeline = await encoder.pipeline(topKRowsWgsl());
  const [x, y] = dispatchGrid(o.slots * o.rows);
  const params = encoder.uniform(TOP_K_ROWS_PARAMS, { ...o, querySeq: d.querySeq, queryOffset: d.queryOffset, tilesX: x });
  encoder.dispatch(pipeline, [params, values, target.bounds, target.indices], x, y);
}

/** DELTA's page selection on the GPU (see the module comment). */
function deltaGpuSelector(config: DeltaConfig): GpuRowSelector {
  const pageSize = config.pageSize;
  return {
    kind: 'block',
    blockSize: pageSize,
    headScope: 'kv',
    stride: (keySeq) => Math.min(config.pageBudget, Math.ceil(keySeq / pageSize)),
    step(backend, resident) {
      const d = resident.dims;
      const pages = Math.ceil(d.keySeq / pageSize);
      const stride = this.stride(d.keySeq);
      // Page scores couple every query head of a batch, across chunks: the kernels run once the
      // last chunk is recorded, over the chunks collected before it (one pass, one scratch).
      const seen: { chunk: ResidentChunk; target: GpuSelectionChunk }[] = [];
      const rows = rowsPerGroup(backend, d.querySeq, d.batch * d.queryHeads * d.keySeq * 4);
      return {
        layout: { kind: 'block', blockSize: pageSize, headScope: 'kv', rows: d.querySeq, queryBlockSize: 1 },
        stride,
        async encodeChunk(encoder) {
          seen.push({ chunk: encoder.chunk, target: encoder.target });
          if (encoder.index !== resident.chunks.length - 1) return;
          const [lsePipeline, scorePipeline] = await Promise.all([encoder.pipeline(rowLseWgsl()), encoder.pipeline(pageScoresWgsl())]);
          const logits = encoder.scratch(d.batch * d.queryHeads * rows * d.keySeq * 4);
          const lse = encoder.scratch(d.batch * d.queryHeads * rows * 4);
          const scores = encoder.scratch(d.batch * rows * pages * 4);
          for (let rowStart = 0; rowStart < d.querySeq; rowStart += rows) {
            const count = Math.min(rows, d.querySeq - rowStart);
            for (const { chunk } of seen) await encodeLogits(encoder, chunk, logits, rowStart, count, chunk.slot0 * d.groupSize);
            const lseRows = d.batch * d.queryHeads * count;
            const [lx, ly] = dispatchGrid(lseRows);
            encoder.dispatch(lsePipeline, [encoder.uniform(ROW_LSE_PARAMS, { count: lseRows, rows: count, rowStart, queryOffset: d.queryOffset, keySeq: d.keySeq, tilesX: lx }), logits, lse], lx, ly);
            const { pageGroups, workgroups } = pageScoreGroups(d.batch, count, pages, pageSize);
            const [sx, sy] = dispatchGrid(workgroups);
            const scoreParams = encoder.uniform(PAGE_SCORES_PARAMS, { batches: d.batch, heads: d.queryHeads, rows: count, rowStart, queryOffset: d.queryOffset, keySeq: d.keySeq, pageSize, pages, tilesX: sx, pageGroups });
            encoder.dispatch(scorePipeline, [scoreParams, logits, lse, scores], sx, sy);
            for (const { chunk, target } of seen) {
              await encodeTopK(encoder, target, scores, {
                slots: chunk.slots,
                rowStart,
                rows: count,
                valueSlotBase: chunk.slot0,
                valueSlotDiv: d.kvHeads,
                valueStride: pages,
                unit: pageSize,
                budget: config.pageBudget,
                recent: config.recentPages,
                stride,
              });
            }
          }
        },
      };
    },
  };
}

/** TidalDecode's per-query-head token top-k on the GPU (see the module comment). */
function tidalGpuSelector(config: TidalDecodeConfig): GpuRowSelector {
  return {
    kind: 'token',
    blockSize: 1,
    headScope: 'query',
    stride: (keySeq) => Math.min(config.tokenBudget, keySeq),
    step(backend, resident) {
      const d = resident.dims;
      const stride = this.stride(d.keySeq);
      const largest = Math.max(...resident.chunks.map((c) => c.slots));
      const rows = rowsPerGroup(backend, d.querySeq, largest * d.groupSize * d.keySeq * 4);
      return {
        layout: { kind: 'token', blockSize: 1, headScope: 'query', rows: d.querySeq, queryBlockSize: 1 },
        stride,
        async encodeChunk(encoder) {
          const slots = encoder.chunk.slots * d.groupSize;
          const logits = encoder.scratch(slots * rows * d.keySeq * 4);
          for (let rowStart = 0; rowStart < d.querySeq; rowStart += rows) {
            const count = Math.min(rows, d.querySeq - rowStart);
            await encodeLogits(encoder, encoder.chunk, logits, rowStart, count, 0);
            await encodeTopK(encoder, encoder.target, logits, { slots, rowStart, rows: count, valueSlotBase: 0, valueSlotDiv: 1, valueStride: d.keySeq, unit: 1, budget: config.tokenBudget, recent: 0, stride });
          }
        },
      };
    },
  };
}

/**
 * Self-selected attention on a resident call: the selector's kernels, then the sparse executor,
 * then the readback of output, lse and selection. A decoder step records all of it as one
 * submission (one round trip to the GPU; timed as a whole, `selectionMs` 0); a prefill times the
 * selection and the attention apart.
 */
async function selectAndAttend(backend: GpuBackend, resident: ResidentAttention, selector: GpuRowSelector, oneSubmission = false): Promise<AttentionResult & { lse: Float32Array }> {
  const d = resident.dims;
  const timings = { selectionMs: 0, attentionMs: 0 };
  const run = async () => {
    const { selection, ms } = await backend.runSelection(resident, selector.step(backend, resident));
    try {
      timings.selectionMs = ms;
      timings.attentionMs = await backend.runSparse(resident, selection);
      return await backend.readResults(resident, selection);
    } finally {
      backend.releaseSelection(selection);
    }
  };
  if (!oneSubmission) {
    const read = await run();
    return selectionResult(d, read, read.selection, timings, backend.info);
  }
  const { value, ms } = await backend.oneSubmission(run);
  return selectionResult(d, value, value.selection, { selectionMs: 0, attentionMs: ms }, backend.info);
}

/** The GPU selectors by method id, from a raw config (parsed with the CPU schema). */
const gpuSelectors: Readonly<Record<string, (config?: Record<string, unknown>) => GpuRowSelector>> = {
  [deltaMethod.id]: (config) => deltaGpuSelector(parseConfig(deltaMethod.id, deltaConfigSchema, config)),
  [tidalDecodeMethod.id]: (config) => tidalGpuSelector(parseConfig(tidalDecodeMethod.id, tidalDecodeConfigSchema, config)),
};

/**
 * The self-selected step of `delta` or `tidal-decode` (by method id) on a resident call, as the
 * decoders run it on their `GpuKVCache` view: the selector's kernels over every query row, then
 * the sparse executor; the output and lse land in the call's own `out` / `lse` (unlike
 * `runResident`, which attends from a one-query view) and are read back with the selection. For
 * the checks.
 */
export function selfSelectedStep(backend: GpuBackend, methodId: string, config?: Record<string, unknown>): (resident: ResidentAttention) => Promise<AttentionResult & { lse: Float32Array }> {
  const make = gpuSelectors[methodId];
  if (!make) throw new ConfigError(`selfSelectedStep: no GPU selector for method '${methodId}' (known: ${Object.keys(gpuSelectors).join(', ')})`);
  const selector = make(config);
  return (resident) => selectAndAttend(backend, resident, selector);
}

/** Dense attention on a resident call (backend-gpu's `denseStep`: one submission), reported with the selection of every key (as the CPU's dense mode). */
async function denseWithSelection(backend: GpuBackend, resident: ResidentAttention, selector: GpuRowSelector): Promise<AttentionResult & { lse: Float32Array }> {
  return { ...(await denseStep(backend, resident)), selection: denseSelection(resident.dims, selector) };
}

/** The GPU method of a self-selected selector: prefill, decoder and the decode benchmark. */
function selfSelectedGpuMethod(backend: GpuBackend, methodId: string, selector: GpuRowSelector, prefillMode: 'dense' | 'self-select'): GpuAttentionMethod {
  return {
    methodId,
    async prefill(input: AttentionInput) {
      const d = validateAttentionInput(input);
      if (!d.causal) throw new ConfigError('layer-reuse methods select from causal decoder attention; causal: false is not supported');
      const resident = backend.upload(input, d);
      try {
        return await (prefillMode === 'dense' ? denseWithSelection(backend, resident, selector) : selectAndAttend(backend, resident, selector));
      } finally {
        backend.release(resident);
      }
    },
    createDecoder(shape: DecoderShape, options?: GpuDecoderOptions): GpuAttentionDecoder {
      const cache = decoderCache(backend, shape, options);
      return {
        get length() {
          return cache.length;
        },
        async step(input: AttentionInput) {
          validateDecoderStep(shape, input, cache.length);
          cache.append(input.k, input.v);
          const view = cache.attend(input.q, shape.scale);
          // One-token steps select (decode); longer chunks follow the prefill mode, as on the CPU.
          return view.dims.querySeq === 1 || prefillMode === 'self-select' ? selectAndAttend(backend, view, selector, true) : denseWithSelection(backend, view, selector);
        },
        reset: () => cache.reset(),
        destroy: () => cache.destroy(),
      };
    },
    /**
     * A decode benchmark: ONE decode step of the last query of every head over all resident keys
     * (the method is decode-time; its prefill is dense), selection kernels then sparse attention.
     * Only the (small) selection is read back, for the density (not with `density: false`). Reports `phase: 'decode'`, so the
     * benchmark compares it with a dense split-K decode step.
     */
    async runResident(resident: ResidentAttention, options?: ResidentRunOptions) {
      return residentCall(backend, options, async () => {
        const { view, release } = await lastQueryView(backend, resident);
        try {
          const d: AttentionDims = view.dims;
          const { selection: gpuSelection, ms: selectionMs } = await backend.runSelection(view, selector.step(backend, view));
          try {
            const attentionMs = await backend.runSparse(view, gpuSelection);
            // The density costs a readback of the selection: only when asked for.
            if (options?.density === false) return { selectionMs, attentionMs, phase: 'decode' as const };
            const selection = await backend.readSelection(gpuSelection);
            return { selectionMs, attentionMs, density: countPairs(selection, d) / densePairCount(d), phase: 'decode' as const };
          } finally {
            backend.releaseSelection(gpuSelection);
          }
        } finally {
          release();
        }
      });
    },
  };
}

/**
 * DELTA's page selection on the GPU (attention level, as {@link deltaMethod}): decode queries
 * attend to the last `recentPages` pages plus the best older pages by Σ_page max_h p, shared by
 * every KV head.
 *
 * @see arXiv:2510.09883 §3.2
 */
export const gpuDeltaMethod: GpuMethodDefinition = {
  id: deltaMethod.id,
  family: deltaMethod.family,
  cpu: deltaMethod,
  create: (backend, config) => {
    const resolved = parseConfig(deltaMethod.id, deltaConfigSchema, config);
    return selfSelectedGpuMethod(backend, deltaMethod.id, deltaGpuSelector(resolved), resolved.prefill);
  },
};

/**
 * TidalDecode's token selection on the GPU (attention level, as {@link tidalDecodeMethod}): each
 * decode query head attends to its top `tokenBudget` keys by raw logit.
 *
 * @see arXiv:2410.05076 §3.1
 */
export const gpuTidalDecodeMethod: GpuMethodDefinition = {
  id: tidalDecodeMethod.id,
  family: tidalDecodeMethod.family,
  cpu: tidalDecodeMethod,
  create: (backend, config) => {
    const resolved = parseConfig(tidalDecodeMethod.id, tidalDecodeConfigSchema, config);
    return selfSelectedGpuMethod(backend, tidalDecodeMethod.id, tidalGpuSelector(resolved), resolved.prefill);
  },
};
