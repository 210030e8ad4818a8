/**
 * `landmark-retrieval` on the GPU: block representatives (backend-gpu's pooling kernel), the
 * tiled candidate scoring ({@link candidateScoreWgsl}; decode steps: one thread per candidate), the per-query GQA reduction + top-k
 * kernel ({@link retrievalTopKWgsl}) and
 * backend-gpu's exact sparse executor, on resident buffers. Picks the CPU method's blocks (up to
 * float32 rounding of near-tied scores) and attends to them exactly like core's `sparseAttention`.
 */
import {
  ConfigError,
  densePairCount,
  parseConfig,
  validateAttentionInput,
  type AttentionDims,
  type AttentionInput,
  type AttentionResult,
} from '@sparse-attn/core';
import {
  blockPoolWgsl,
  chunkKeyStride,
  dispatchGrid,
  type GpuAttentionMethod,
  type GpuBackend,
  GpuBufferPool,
  type GpuMethodDefinition,
  type GpuSelectionStep,
  createGpuWindowDecoder,
  type GpuDecoderOptions,
  type KeptWindows,
  POOL_PARAMS,
  POOL_THREADS,
  type ResidentAttention,
  residentCall,
  residentWindowStepper,
  type ResidentRunOptions,
  selectThenAttend,
  type WindowSpec,
  type WindowStepPlan,
} from '@sparse-attn/backend-gpu';
import { validateContext } from '../cached-decoder.js';
import { landmarkRetrievalConfigSchema, landmarkRetrievalMethod, type LandmarkRetrievalConfig } from '../landmark-retrieval.js';
import { requireCausal, withGpuSelection } from './gpu-helpers.js';
import { CANDIDATE_TILE_ROWS, candidateScorer, dispatchCandidateScores } from './candidate-score-wgsl.js';
import { RETRIEVAL_TOP_K_PARAMS, RETRIEVAL_TOP_K_ROWS_MAX, RETRIEVAL_TOP_K_THREADS, retrievalTopKRowsWgsl, retrievalTopKWgsl, scoreRowStride } from './retrieval-top-k-wgsl.js';

/**
 * Floats per query slot (query head) of the score scratch: query rows are scored this many block
 * scores at a time (`rowCount ≈ SCORE_SCRATCH_FLOATS / blocks` rows per dispatch), so the scratch
 * is 16 MiB per query head whatever the sequence length. Large enough that a ranking dispatch
 * (one thread per KV head and row) fills the GPU: 4096 rows × 32 heads at 64k keys in blocks of 64.
 */
export const SCORE_SCRATCH_FLOATS = 1 << 22;

/**
 * Query rows scored per dispatch at `blocks` candidate blocks (landmark-retrieval and landmark):
 * a multiple of the scoring tile's 64 rows where the budget allows, at least 1, at most `querySeq`.
 */
export function retrievalRowsPerDispatch(querySeq: number, blocks: number, floats = SCORE_SCRATCH_FLOATS): number {
  const rows = Math.floor(floats / Math.max(1, blocks));
  const tiled = rows >= CANDIDATE_TILE_ROWS ? rows - (rows % CANDIDATE_TILE_ROWS) : rows;
  return Math.max(1, Math.min(querySeq, tiled));
}

/** `rows`, or fewer (a multiple of the tile's rows where possible, at least 1) when only `fit` fit a binding. */
export function rowsWithin(rows: number, fit: number): number {
  if (fit >= rows) return rows;
  return Math.max(1, fit >= CANDIDATE_TILE_ROWS ? fit - (fit % CANDIDATE_TILE_ROWS) : fit);
}

/** Bytes per KV slot of the largest scratch buffer the selection step allocates (for chunking). */
export function retrievalScratchBytesPerSlot(d: Pick<AttentionDims, 'querySeq' | 'keySeq' | 'headDim' | 'groupSize'>, config: Pick<LandmarkRetrievalConfig, 'blockSize'>): number {
  const blocks = Math.max(1, Math.floor(d.keySeq / config.blockSize));
  const rowFloats = scoreRowStride(blocks);
  return 4 * Math.max(d.groupSize * retrievalRowsPerDispatch(d.querySeq, rowFloats) * rowFloats, blocks * d.headDim);
}

/** The block representatives a decoder keeps (backend-gpu's pooling kernel writes all three). */
export type RetrievalRepresentative = 'mean' | 'max' | 'min';

/** The windows landmark retrieval's decoders keep: every complete block's mean, max and min keys. */
export function retrievalWindows(config: Pick<LandmarkRetrievalConfig, 'blockSize'>, headDim: number): WindowSpec<RetrievalRepresentative> {
  return { length: config.blockSize, stride: config.blockSize, floats: { mean: headDim, max: headDim, min: headDim } };
}

/**
 * The selection step: per chunk, pool the complete key blocks (mean, max, min per channel), then
 * per range of query rows: the tiled scoring kernel ({@link candidateScoreWgsl}, 64 rows × 64
 * blocks per workgroup, every query head of the chunk; decode steps: `candidateScoreDecodeWgsl`,
 * a thread per candidate) writes the raw scores (rows padded to a
 * multiple of 4 floats), and the top-k kernel ({@link retrievalTopKWgsl}, one thread per (KV head,
 * query)) reduces the group and writes one CSR row of `topK + 2` blocks at most. With a `kept`
 * pool the representatives and scores are taken from it (every buffer is written before it is read)
 * instead of allocated per call: 48 MiB of representatives at 64k, whose allocation cost a decode
 * step ~2 ms of host time and the call after it ~0.7 ms on the H100. With `representatives` (a
 * decoder's kept blocks, {@link retrievalWindows}), they are read from and pooled into those
 * buffers, and only the blocks from `representatives.first` on are pooled: the ones completed since
 * the decoder's last step, not a read of every key.
 */
export function retrievalSelectionStep(
  config: LandmarkRetrievalConfig,
  d: AttentionDims,
  maxBinding = Infinity,
  scratchFloats = SCORE_SCRATCH_FLOATS,
  kept?: GpuBufferPool,
  representatives?: KeptWindows<RetrievalRepresentative>,
  topKRowsMax = RETRIEVAL_TOP_K_ROWS_MAX,
): GpuSelectionStep {
  const bs = config.blockSize;
  const complete = Math.floor(d.keySeq / bs);
  const blocks = Math.max(1, complete);
  const stride = config.topK + 2;
  const quest = config.representative === 'quest';
  const rowFloats = scoreRowStride(blocks);
  const rowsPerDispatch = retrievalRowsPerDispatch(d.querySeq, rowFloats, scratchFloats);
  return {
    layout: { kind: 'block', blockSize: bs, headScope: 'kv', rows: d.querySeq, queryBlockSize: 1 },
    stride,
    async encodeChunk(encoder) {
      const { chunk, target } = encoder;
      const querySlots = chunk.slots * d.groupSize;
      // A chunk of many slots scores fewer rows per dispatch so its scratch fits one binding.
      const rowCount = rowsWithin(rowsPerDispatch, Math.floor(maxBinding / (4 * querySlots * rowFloats)));
      // Few rows (a decode step): a workgroup per row ranks the candidates; else a thread per row.
      const perRow = chunk.slots * Math.min(rowCount, d.querySeq) <= topKRowsMax;
      const topKOptions = { groupReduce: config.groupReduce, maxPicks: config.topK, groupSize: d.groupSize };
      const scorer = candidateScorer({ headDim: d.headDim, operand: quest ? 'quest' : 'dot' }, Math.min(rowCount, d.querySeq));
      const [pool, score, topK] = await Promise.all([
        encoder.pipeline(blockPoolWgsl()),
        encoder.pipeline(scorer.code),
        encoder.pipeline(perRow ? retrievalTopKRowsWgsl(topKOptions) : retrievalTopKWgsl(topKOptions)),
      ]);
      const take = (name: string, bytes: number) => (kept ? kept.take(`${name}:${encoder.index}`, bytes) : encoder.scratch(bytes));
      const pooledBytes = chunk.slots * blocks * d.headDim * 4;
      const own = (name: RetrievalRepresentative) => representatives?.buffers[name][encoder.index] ?? take(name, pooledBytes);
      const [mean, max, min] = [own('mean'), own('max'), own('min')];
      const first = Math.min(representatives?.first ?? 0, complete);
      if (complete > first) {
        const [px, py] = dispatchGrid(Math.ceil((chunk.slots * (complete - first) * d.headDim) / POOL_THREADS));
        const poolParams = encoder.uniform(POOL_PARAMS, { keySeq: d.keySeq, keyStride: chunkKeyStride(chunk, d), blockSize: bs, blocks: complete - first, first, slots: chunk.slots, tilesX: px, dim: d.headDim });
        encoder.dispatch(pool, [poolParams, chunk.k, mean, max, min], px, py);
      }
      const scores = take('scores', querySlots * rowCount * rowFloats * 4);
      for (let rowStart = 0; rowStart < d.querySeq; rowStart += rowCount) {
        const count = Math.min(rowCount, d.querySeq - rowStart);
        // Candidates are blocks 1 .. current − 1 (the row stride is padded; rows stay below it).
        const geometry = { querySlots, rowStart, rowCount: count, candidates: blocks, rowFloats, blockSize: bs, first: 1, topK: config.topK, keyRows: blocks, keyStride: 1, keyOffset: 0, outScale: 1 };
        dispatchCandidateScores(encoder, { pipeline: score, decode: scorer.decode }, d, geometry, [chunk.q, quest ? max : mean, quest ? min : undefined, scores]);
        const [x, y] = dispatchGrid(perRow ? chunk.slots * count : Math.ceil((chunk.slots * count) / RETRIEVAL_TOP_K_THREADS));
        const params = encoder.uniform(RETRIEVAL_TOP_K_PARAMS, {
          querySeq: d.querySeq,
          queryOffset: d.queryOffset,
          slots: chunk.slots,
          tilesX: x,
          rowStart,
          rowCount: count,
          blockSize: bs,
          rowVec4s: rowFloats / 4,
          topK: config.topK,
          stride,
          pad0: 0,
          scale: d.scale,
        });
        encoder.dispatch(topK, [params, scores, target.bounds, target.indices], x, y);
      }
    },
  };
}

/** Blocks in query `i`'s row (the selection's row length follows from the geometry alone). */
function rowBlocks(d: AttentionDims, config: LandmarkRetrievalConfig, i: number): number {
  const current = Math.floor((d.queryOffset + i) / config.blockSize);
  return Math.min(current + 1, config.topK + 2);
}

/** Query–key pairs the selection scores (causally masked), computed from the geometry without reading it back. */
export function retrievalPairCount(d: AttentionDims, config: LandmarkRetrievalConfig): number {
  const bs = config.blockSize;
  let pairs = 0;
  for (let i = 0; i < d.querySeq; i++) {
    const pos = d.queryOffset + i;
    const current = Math.floor(pos / bs);
    pairs += current <= config.topK + 1 ? pos + 1 : (config.topK + 1) * bs + (pos - current * bs + 1);
  }
  return pairs * d.batch * d.queryHeads;
}

/** The CPU method's diagnostics, from the geometry. */
function retrievalDiagnostics(d: AttentionDims, config: LandmarkRetrievalConfig): Record<string, number> {
  let total = 0;
  for (let i = 0; i < d.querySeq; i++) total += rowBlocks(d, config, i);
  const complete = Math.floor(d.keySeq / config.blockSize);
  const floats = config.representative === 'mean' ? d.headDim : 2 * d.headDim;
  return {
    meanSelectedBlocks: d.querySeq === 0 ? 0 : total / d.querySeq,
    completeBlocks: complete,
    representativeBytes: d.batch * d.kvHeads * complete * floats * 4,
  };
}

/**
 * Selection + attention of one (validated, causal) call on the GPU; `scratchFloats` (score floats
 * per query head and row range) is lowered only by the checks, to run many row ranges at small S.
 */
export async function retrievalAttend(backend: GpuBackend, config: LandmarkRetrievalConfig, input: AttentionInput, scratchFloats = SCORE_SCRATCH_FLOATS, topKRowsMax = RETRIEVAL_TOP_K_ROWS_MAX): Promise<AttentionResult> {
  const d = validateAttentionInput(input);
  return backend.withPool(RETRIEVAL_POOL, (pool) =>
    backend.selectionAttention(input, retrievalSelectionStep(config, d, backend.context.maxBinding, scratchFloats, pool, undefined, topKRowsMax), {
      extraBytesPerSlot: retrievalScratchBytesPerSlot(d, config),
      diagnostics: retrievalDiagnostics(d, config),
    }),
  );
}

/** Owner name of landmark-retrieval's kept representatives and scores in the backend (`borrowPool`; freed by `releaseScratch()`). */
export const RETRIEVAL_POOL = 'landmark-retrieval';

const CAUSAL_REASON = 'retrieval ranks blocks before each query';

/**
 * `landmark-retrieval` with selection and attention on the GPU (same id, config schema and
 * errors as {@link landmarkRetrievalMethod}). Prefill, decode (cache and representatives on the
 * device) and `runResident` (pool → select → sparse attention on resident buffers; density from the
 * geometry, nothing read back).
 */
export const gpuLandmarkRetrievalMethod: GpuMethodDefinition = {
  id: landmarkRetrievalMethod.id,
  family: landmarkRetrievalMethod.family,
  cpu: landmarkRetrievalMethod,
  create(backend, rawConfig): GpuAttentionMethod {
    const config = parseConfig(landmarkRetrievalMethod.id, landmarkRetrievalConfigSchema, rawConfig);
    return {
      methodId: landmarkRetrievalMethod.id,
      async prefill(input) {
        const d = validateAttentionInput(input);
        requireCausal(landmarkRetrievalMethod.id, d.causal, CAUSAL_REASON);
        return retrievalAttend(backend, config, input);
      },
      // The GPU decoder: K/V and every complete block's representatives stay on the device
      // (backend-gpu's window decoder); a step uploads its new tokens, pools the blocks they
      // complete and ranks all kept ones, as the CPU decoder appends its representatives block by
      // block (the same values up to float32 summation order of the `mean` representative).
      createDecoder: (shape, options?: GpuDecoderOptions) =>
        createGpuWindowDecoder(backend, shape, retrievalWindows(config, shape.headDim), (d) => retrievalStepPlan(backend, config, d), {
          ...options,
          validateContext: (k, v) => validateContext(shape, k, v),
        }),
      async runResident(resident: ResidentAttention, options?: ResidentRunOptions) {
        const d = resident.dims;
        requireCausal(landmarkRetrievalMethod.id, d.causal, CAUSAL_REASON);
        checkScratch(backend, d, config);
        // The density is known in closed form (no readback): reported whatever the options.
        const density = retrievalPairCount(d, config) / densePairCount(d);
        const run = await residentCall(backend, options, () =>
          backend.withPool(RETRIEVAL_POOL, (pool) =>
            withGpuSelection(backend, resident, retrievalSelectionStep(config, d, backend.context.maxBinding, SCORE_SCRATCH_FLOATS, pool), async (selection, selectionMs) => ({
              selectionMs,
              attentionMs: await backend.runSparse(resident, selection),
            })),
          ),
        );
        return { ...run, density };
      },
      // What the benchmark's decode rows time: the decoder's step on a resident call, its kept blocks pooled by the first step.
      decodeResident: async (view) => residentWindowStepper(backend, view, retrievalWindows(config, view.dims.headDim), retrievalStepPlan(backend, config, view.dims)),
    };
  },
};

/** The `ConfigError` of a call whose score scratch per KV slot exceeds the device's largest binding. */
function checkScratch(backend: GpuBackend, d: AttentionDims, config: LandmarkRetrievalConfig): void {
  const largest = retrievalScratchBytesPerSlot(d, config);
  if (largest > backend.context.maxBinding) throw new ConfigError(`landmark-retrieval: ${largest} bytes of scratch per KV slot exceed the device's largest binding`);
}

/**
 * A decode step of a decoder with kept representatives ({@link retrievalWindows}): checks the
 * call, then pools the blocks completed since the last step, ranks every kept block and attends.
 */
function retrievalStepPlan(backend: GpuBackend, config: LandmarkRetrievalConfig, d: AttentionDims): WindowStepPlan<RetrievalRepresentative> {
  requireCausal(landmarkRetrievalMethod.id, d.causal, CAUSAL_REASON);
  checkScratch(backend, d, config);
  return {
    extraBytesPerSlot: retrievalScratchBytesPerSlot(d, config),
    run: (resident, kept) => selectThenAttend(backend, resident, retrievalSelectionStep(config, d, backend.context.maxBinding, SCORE_SCRATCH_FLOATS, undefined, kept)),
    diagnostics: retrievalDiagnostics(d, config),
  };
}
