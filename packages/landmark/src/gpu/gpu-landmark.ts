/**
 * `landmark` (the paper's grouped softmax, `positions: 'absolute'`) on the GPU: tiled landmark
 * scoring ({@link candidateScoreWgsl}) and per-query top-k retrieval ({@link landmarkTopKWgsl}) write each query's attended blocks as CSR
 * rows, and the grouped softmax kernel ({@link groupedSoftmaxWgsl}) attends over them; its
 * weighting is not one softmax over the selection, so backend-gpu's sparse executor is not used.
 */
import {
  ConfigError,
  densePairCount,
  parseConfig,
  sparseStats,
  validateAttentionInput,
  type AttentionDims,
  type AttentionInput,
  type AttentionResult,
} from '@sparse-attn/core';
import {
  chunkKeyStride,
  DECODE_MERGE_PARAMS,
  decodeMergeGrid,
  decodeMergeWgsl,
  decodePartialRecord,
  createGpuWindowDecoder,
  NO_WINDOWS,
  dispatchGrid,
  oneSubmissionRun,
  selectThenAttend,
  type GpuAttentionMethod,
  type GpuDecoderOptions,
  type GpuBackend,
  type GpuMethodDefinition,
  type GpuSelection,
  type GpuSelectionStep,
  type ResidentAttention,
  residentCall,
  type ResidentRunOptions,
} from '@sparse-attn/backend-gpu';
import { landmarkConfigSchema, landmarkMethod, type LandmarkConfig } from '../landmark-attention.js';
import { retrievedBlockCount } from '../landmark-slot-positions.js';
import { GROUPED_SOFTMAX_PARAMS, groupedSoftmaxWgsl, groupedSoftmaxWorkgroupBytes } from './grouped-softmax-wgsl.js';
import { candidateScorer, dispatchCandidateScores } from './candidate-score-wgsl.js';
import { LANDMARK_TOP_K_PARAMS, LANDMARK_TOP_K_THREADS, landmarkTopKRowsWgsl, landmarkTopKWgsl } from './landmark-top-k-wgsl.js';
import { RETRIEVAL_TOP_K_ROWS_MAX, scoreRowStride } from './retrieval-top-k-wgsl.js';
import { LANDMARK_OWN_BLOCK_PARAMS, landmarkOwnBlockWgsl, landmarkOwnBlockWorkgroupBytes } from './landmark-own-block-wgsl.js';
import {
  LANDMARK_ENTRY_PARAMS,
  LANDMARK_FOLD_ROWS,
  LANDMARK_FREE_COPY_PARAMS,
  LANDMARK_MERGE_THREADS,
  LANDMARK_SELECTED_COPY_PARAMS,
  landmarkEntryRowsWgsl,
  landmarkFreeCopyWgsl,
  landmarkSelectedCopyWgsl,
  landmarkGateFoldWgsl,
} from './landmark-block-merge-wgsl.js';
import { LANDMARK_DECODE_PARTS_PARAMS, landmarkDecodePartsWgsl, landmarkDecodePartsWorkgroupBytes } from './landmark-decode-parts-wgsl.js';
import { SCORE_SCRATCH_FLOATS, retrievalRowsPerDispatch, rowsWithin } from './gpu-landmark-retrieval.js';
import { requireCausal, withGpuSelection } from './gpu-helpers.js';
import { validateContext } from '../cached-decoder.js';

/** Earlier blocks of the last query (the most any row retrieves). */
function maxBlocksOf(d: Pick<AttentionDims, 'keySeq'>, span: number): number {
  return Math.floor(Math.max(0, d.keySeq - 1) / span);
}

/** Largest number of blocks of one row: the retrieved ones plus the query's own. */
export function landmarkRowStride(config: Pick<LandmarkConfig, 'topK' | 'blockLength'>, d: Pick<AttentionDims, 'keySeq'>): number {
  const maxBlocks = maxBlocksOf(d, config.blockLength + 1);
  return (config.topK === 0 ? maxBlocks : Math.min(config.topK, maxBlocks)) + 1;
}

/** Bytes per KV slot of the largest scratch buffer the selection allocates (for chunking). */
export function landmarkScratchBytesPerSlot(d: Pick<AttentionDims, 'keySeq' | 'querySeq' | 'groupSize'>, config: Pick<LandmarkConfig, 'blockLength'>): number {
  const rowFloats = scoreRowStride(maxBlocksOf(d, config.blockLength + 1));
  return 4 * d.groupSize * retrievalRowsPerDispatch(d.querySeq, rowFloats) * rowFloats;
}

/**
 * The selection step, per range of query rows: the tiled scoring kernel ({@link candidateScoreWgsl},
 * q · landmark key, 64 rows × 64 blocks per workgroup; decode steps: `candidateScoreDecodeWgsl`, a
 * thread per landmark) writes every (query head, query)'s landmark
 * scores, then the top-k kernel ({@link landmarkTopKWgsl}, one thread per row) writes its CSR row.
 */
export function landmarkSelectionStep(config: LandmarkConfig, d: AttentionDims, maxBinding = Infinity, scratchFloats = SCORE_SCRATCH_FLOATS, topKRowsMax = RETRIEVAL_TOP_K_ROWS_MAX): GpuSelectionStep {
  const span = config.blockLength + 1;
  const maxBlocks = Math.max(1, maxBlocksOf(d, span));
  const stride = landmarkRowStride(config, d);
  // Score rows padded to a multiple of 4 floats (the top-k reads them as vec4).
  const rowFloats = scoreRowStride(maxBlocks);
  const rowsPerDispatch = retrievalRowsPerDispatch(d.querySeq, rowFloats, scratchFloats);
  return {
    layout: { kind: 'block', blockSize: span, headScope: 'query', rows: d.querySeq, queryBlockSize: 1 },
    stride,
    async encodeChunk(encoder) {
      const { chunk, target } = encoder;
      const querySlots = chunk.slots * d.groupSize;
      const rowCount = rowsWithin(rowsPerDispatch, Math.floor(maxBinding / (4 * querySlots * rowFloats)));
      // Few rows (a decode step): a workgroup per row ranks the landmarks; else a thread per row.
      const perRow = querySlots * Math.min(rowCount, d.querySeq) <= topKRowsMax;
      const scorer = candidateScorer({ headDim: d.headDim, operand: 'dot' }, Math.min(rowCount, d.querySeq));
      const [score, topK] = await Promise.all([
        encoder.pipeline(scorer.code),
        encoder.pipeline(perRow ? landmarkTopKRowsWgsl({ maxPicks: config.topK }) : landmarkTopKWgsl({ maxPicks: config.topK })),
      ]);
      const scores = encoder.scratch(querySlots * rowCount * rowFloats * 4);
      for (let rowStart = 0; rowStart < d.querySeq; rowStart += rowCount) {
        const count = Math.min(rowCount, d.querySeq - rowStart);
        // q · k at each landmark: row `blockLength + j·span` of the keys, scaled like a logit (the chunk's slots `keyStride` rows apart).
        const geometry = { querySlots, rowStart, rowCount: count, candidates: maxBlocks, rowFloats, blockSize: span, first: 0, topK: config.topK, keyRows: chunkKeyStride(chunk, d), keyStride: span, keyOffset: config.blockLength, outScale: d.scale };
        dispatchCandidateScores(encoder, { pipeline: score, decode: scorer.decode }, d, geometry, [chunk.q, chunk.k, undefined, scores]);
        const [x, y] = dispatchGrid(perRow ? querySlots * count : Math.ceil((querySlots * count) / LANDMARK_TOP_K_THREADS));
        const params = encoder.uniform(LANDMARK_TOP_K_PARAMS, {
          querySeq: d.querySeq,
          queryOffset: d.queryOffset,
          querySlots,
          tilesX: x,
          rowStart,
          rowCount: count,
          span,
          rowVec4s: rowFloats / 4,
          topK: config.topK,
          stride,
        });
        encoder.dispatch(topK, [params, scores, target.bounds, target.indices], x, y);
      }
    },
  };
}

/**
 * Runs the grouped softmax over a GPU selection on a resident call (writes the chunks' out and
 * lse). Without a selection (`topK = 0`) every earlier block is read and no rows are needed.
 */
export async function runGroupedSoftmax(backend: GpuBackend, resident: ResidentAttention, selection: GpuSelection | undefined, config: LandmarkConfig, options: { ownOnly?: boolean } = {}): Promise<number> {
  const d = resident.dims;
  return backend.runKernels(resident, async (encoder) => {
    const { chunk, index } = encoder;
    const pipeline = await encoder.pipeline(groupedSoftmaxWgsl({ headDim: d.headDim, valueDim: d.valueDim, blockLength: config.blockLength }));
    const querySlots = chunk.slots * d.groupSize;
    const [x, y] = dispatchGrid(querySlots * d.querySeq);
    const params = encoder.uniform(GROUPED_SOFTMAX_PARAMS, {
      querySeq: d.querySeq,
      queryOffset: d.queryOffset,
      querySlots,
      tilesX: x,
      groupSize: d.groupSize,
      keySeq: d.keySeq,
      span: config.blockLength + 1,
      blockLength: config.blockLength,
      scale: d.scale,
      allBlocks: selection ? 0 : 1,
      ownOnly: options.ownOnly ? 1 : 0,
      keyStride: chunkKeyStride(chunk, d),
    });
    const rows = selection ? selection.chunks[index]! : { bounds: encoder.scratch(16), indices: encoder.scratch(16) };
    encoder.dispatch(pipeline, [params, chunk.q, chunk.k, chunk.v, chunk.out, chunk.lse, rows.bounds, rows.indices], x, y);
  });
}

/**
 * The own-block part of every row (output a_c / l_c and lse m_c + log l_c): one workgroup per
 * (query head, own block) where the block fits ({@link landmarkOwnBlockWgsl}), else the grouped
 * softmax kernel per row with no retrieved block.
 */
export async function runOwnBlocks(backend: GpuBackend, resident: ResidentAttention, config: LandmarkConfig): Promise<number> {
  const d = resident.dims;
  if (landmarkOwnBlockWorkgroupBytes(config.blockLength) > backend.context.maxWorkgroupBytes) {
    return runGroupedSoftmax(backend, resident, undefined, config, { ownOnly: true });
  }
  const span = config.blockLength + 1;
  const firstBlock = Math.floor(d.queryOffset / span);
  const ownBlocks = Math.floor((d.keySeq - 1) / span) - firstBlock + 1;
  return backend.runKernels(resident, async (encoder) => {
    const { chunk } = encoder;
    const pipeline = await encoder.pipeline(landmarkOwnBlockWgsl({ headDim: d.headDim, valueDim: d.valueDim, blockLength: config.blockLength }));
    const querySlots = chunk.slots * d.groupSize;
    const [x, y] = dispatchGrid(querySlots * ownBlocks);
    const params = encoder.uniform(LANDMARK_OWN_BLOCK_PARAMS, {
      querySeq: d.querySeq,
      queryOffset: d.queryOffset,
      querySlots,
      tilesX: x,
      groupSize: d.groupSize,
      keySeq: d.keySeq,
      firstBlock,
      ownBlocks,
      scale: d.scale,
      pad0: 0,
      pad1: 0,
      keyStride: chunkKeyStride(chunk, d),
    });
    encoder.dispatch(pipeline, [params, chunk.q, chunk.k, chunk.v, chunk.out, chunk.lse], x, y);
  });
}

/** Owner name of the landmark method's kept buffers in the backend (`borrowPool`). */
const LANDMARK_POOL = 'landmark';

/**
 * The grouped softmax over a GPU selection, key-block-major (see `landmark-block-merge-wgsl.ts`):
 * the own part per row (the grouped softmax kernel with no retrieved block), then for every entry
 * x < topK of the rows, the x-th retrieved block's exact partial by backend-gpu's sparse executor
 * over landmark-free copies K' / V' (block b of K' = block b's ℓ ordinary tokens; each block is
 * read once per 64 queries that chose it, instead of once per query), folded into the running
 * output and lse with the landmark gate. Extra memory per chunk: K' and V' (≤ the chunk's k and v)
 * and one partial out + lse (the size of the chunk's out and lse), kept in the backend's pool
 * between calls (`releaseScratch()` frees them).
 */
export async function runGroupedSoftmaxByBlocks(backend: GpuBackend, resident: ResidentAttention, selection: GpuSelection, config: LandmarkConfig): Promise<number> {
  const d = resident.dims;
  if (decodeParts(backend, config, d)) return runGroupedSoftmaxDecode(backend, resident, selection, config);
  const span = config.blockLength + 1;
  const blocks = maxBlocksOf(d, span);
  let ms = await runOwnBlocks(backend, resident, config);
  // The longest row's retrieved blocks (topK, or every earlier block when topK = 0).
  const entries = landmarkRowStride(config, d) - 1;
  if (entries === 0) return ms;
  // K' keeps at least querySeq rows, so the executor's queryOffset (keySeq' − querySeq) is ≥ 0; it runs non-causally (every retrieved block precedes the query's own).
  const freeSeq = Math.max(blocks * config.blockLength, d.querySeq, 1);
  // K′, V′ (up to the size of K and V) and the partial out / lse are kept between calls in the
  // backend's pool (freed by `releaseScratch()`): allocating and first touching 2 GiB per call
  // cost more than the copy into them, and the churn slowed the next method's gathers. Every
  // row the executor reads is written first (K′/V′ rows of retrieved blocks by the copy, every
  // query's partial by the executor), so reused contents are never read.
  return backend.withPool(LANDMARK_POOL, async (pool) => {
    const free = resident.chunks.map((chunk, i) => ({
      k: pool.take(`k${i}`, chunk.slots * freeSeq * d.headDim * 4),
      v: pool.take(`v${i}`, chunk.slots * freeSeq * d.valueDim * 4),
      out: pool.take(`out${i}`, chunk.slots * d.groupSize * d.querySeq * d.valueDim * 4),
      lse: pool.take(`lse${i}`, chunk.slots * d.groupSize * d.querySeq * 4),
    }));
    const freeDims: AttentionDims = {
      ...d,
      keySeq: freeSeq,
      causal: false,
      queryOffset: freeSeq - d.querySeq,
      kDims: { ...d.kDims, seq: freeSeq },
      vDims: { ...d.vDims, seq: freeSeq },
    };
    // K′ / V′ are compact (`[slots][freeSeq][dim]`), whatever the source chunk's keyStride (a KV cache's capacity).
    const freeResident: ResidentAttention = { dims: freeDims, chunks: resident.chunks.map((chunk, i) => ({ ...chunk, k: free[i]!.k, v: free[i]!.v, keyStride: freeSeq })) };
    ms += await backend.runKernels(resident, async (encoder) => {
      const { chunk, index } = encoder;
      const rows = chunk.slots * d.groupSize * d.querySeq;
      // A few rows (a decode step) copy only the blocks they retrieve; a prefill copies every block.
      const selectedOnly = rows * entries < chunk.slots * blocks;
      const pipeline = await encoder.pipeline(selectedOnly ? landmarkSelectedCopyWgsl() : landmarkFreeCopyWgsl());
      const source = selection.chunks[index]!;
      const keyStride = chunkKeyStride(chunk, d);
      for (const [from, to, dim] of [[chunk.k, free[index]!.k, d.headDim], [chunk.v, free[index]!.v, d.valueDim]] as const) {
        if (selectedOnly) {
          const [x, y] = dispatchGrid(rows * entries);
          const params = encoder.uniform(LANDMARK_SELECTED_COPY_PARAMS, { slots: chunk.slots, keySeq: d.keySeq, freeSeq, blockLength: config.blockLength, span, dim, tilesX: x, rows, entries, querySeq: d.querySeq, groupSize: d.groupSize, keyStride });
          encoder.dispatch(pipeline, [params, from, to, source.bounds, source.indices], x, y);
          continue;
        }
        const [x, y] = dispatchGrid(Math.ceil((chunk.slots * blocks * config.blockLength * dim) / LANDMARK_MERGE_THREADS));
        const params = encoder.uniform(LANDMARK_FREE_COPY_PARAMS, { slots: chunk.slots, keySeq: d.keySeq, freeSeq, blocks, blockLength: config.blockLength, span, dim, tilesX: x, keyStride, pad0: 0, pad1: 0, pad2: 0 });
        encoder.dispatch(pipeline, [params, from, to], x, y);
      }
    });
    // `keyStride`: rows between the KV slots of the fold's k (the source chunk's); the entry-row kernel reads no keys.
    const entryParams = (rows: number, entry: number, tilesX: number, keyStride = 0) => ({
      rows,
      entry,
      tilesX,
      keySeq: d.keySeq,
      querySeq: d.querySeq,
      groupSize: d.groupSize,
      span,
      blockLength: config.blockLength,
      scale: d.scale,
      pad0: 0,
      pad1: 0,
      keyStride,
    });
    for (let entry = 0; entry < entries; entry++) {
      const step: GpuSelectionStep = {
        layout: { kind: 'block', blockSize: config.blockLength, headScope: 'query', rows: d.querySeq, queryBlockSize: 1 },
        stride: 1,
        async encodeChunk(encoder) {
          const rows = encoder.chunk.slots * d.groupSize * d.querySeq;
          const [x, y] = dispatchGrid(Math.ceil(rows / LANDMARK_MERGE_THREADS));
          const source = selection.chunks[encoder.index]!;
          const params = encoder.uniform(LANDMARK_ENTRY_PARAMS, entryParams(rows, entry, x));
          encoder.dispatch(await encoder.pipeline(landmarkEntryRowsWgsl()), [params, source.bounds, source.indices, encoder.target.bounds, encoder.target.indices], x, y);
        },
      };
      const { selection: rowsOfEntry, ms: entryMs } = await backend.runSelection(freeResident, step);
      try {
        ms += entryMs;
        ms += await backend.runSparse(freeResident, rowsOfEntry, free);
      } finally {
        backend.releaseSelection(rowsOfEntry);
      }
      ms += await backend.runKernels(resident, async (encoder) => {
        const { chunk, index } = encoder;
        const rows = chunk.slots * d.groupSize * d.querySeq;
        const [x, y] = dispatchGrid(Math.ceil(rows / LANDMARK_FOLD_ROWS));
        const source = selection.chunks[index]!;
        const params = encoder.uniform(LANDMARK_ENTRY_PARAMS, entryParams(rows, entry, x, chunkKeyStride(chunk, d)));
        const pipeline = await encoder.pipeline(landmarkGateFoldWgsl({ headDim: d.headDim, valueDim: d.valueDim }));
        encoder.dispatch(pipeline, [params, chunk.q, chunk.k, source.bounds, source.indices, free[index]!.out, chunk.out, chunk.lse], x, y);
      });
    }
    return ms;
  });
}

/** The landmark selection's layout as the backend's executor sees it (its split-K calls are decode-shaped). */
function selectionLayout(config: LandmarkConfig, d: AttentionDims) {
  return { kind: 'block', blockSize: config.blockLength, headScope: 'query', rows: d.querySeq, queryBlockSize: 1 } as const;
}

/**
 * Whether a call's grouped softmax runs as split-K partials ({@link runGroupedSoftmaxDecode}): a
 * decode-shaped call (the backend's split-K calls), whose kernel fits the device's workgroup memory
 * and whose partial records fit one binding.
 */
function decodeParts(backend: GpuBackend, config: LandmarkConfig, d: AttentionDims): boolean {
  if (backend.executorFor(selectionLayout(config, d), d) !== 'split-k') return false;
  if (landmarkDecodePartsWorkgroupBytes({ headDim: d.headDim, blockLength: config.blockLength }) > backend.context.maxWorkgroupBytes) return false;
  const rows = d.batch * d.queryHeads * d.querySeq;
  return rows * landmarkRowStride(config, d) * decodePartialRecord(d.valueDim) * 4 <= backend.context.maxBinding;
}

/**
 * The grouped softmax of a decode-shaped call over a GPU selection, as split-K partials (see
 * `landmark-decode-parts-wgsl.ts`): one workgroup per (row, entry) writes the own block's or a
 * retrieved block's record, and backend-gpu's split-K merge writes the chunks' out and lse. Two
 * dispatches per chunk, reading the cache in place.
 */
async function runGroupedSoftmaxDecode(backend: GpuBackend, resident: ResidentAttention, selection: GpuSelection, config: LandmarkConfig): Promise<number> {
  const d = resident.dims;
  const parts = landmarkRowStride(config, d);
  return backend.runKernels(resident, async (encoder) => {
    const { chunk, index } = encoder;
    const rows = chunk.slots * d.groupSize * d.querySeq;
    const [partsKernel, merge] = await Promise.all([
      encoder.pipeline(landmarkDecodePartsWgsl({ headDim: d.headDim, valueDim: d.valueDim, blockLength: config.blockLength })),
      encoder.pipeline(decodeMergeWgsl(d.valueDim)),
    ]);
    const records = encoder.scratch(rows * parts * decodePartialRecord(d.valueDim) * 4);
    const source = selection.chunks[index]!;
    const [x, y] = dispatchGrid(rows * parts);
    const params = encoder.uniform(LANDMARK_DECODE_PARTS_PARAMS, {
      rows,
      parts,
      tilesX: x,
      querySeq: d.querySeq,
      queryOffset: d.queryOffset,
      groupSize: d.groupSize,
      keyStride: chunkKeyStride(chunk, d),
      scale: d.scale,
      pad0: 0,
      pad1: 0,
      pad2: 0,
      pad3: 0,
    });
    encoder.dispatch(partsKernel, [params, chunk.q, chunk.k, chunk.v, source.bounds, source.indices, records], x, y);
    const [mx, my] = decodeMergeGrid(rows, d.valueDim);
    encoder.dispatch(merge, [encoder.uniform(DECODE_MERGE_PARAMS, { rows, partitions: parts, tilesX: mx, pad0: 0 }), records, chunk.out, chunk.lse], mx, my);
  });
}

/**
 * Pairs the CPU method counts, from the geometry: per query head and query, its own block's
 * tokens up to the query, one landmark score per earlier block, and ℓ tokens per retrieved block.
 */
export function landmarkPairCount(d: AttentionDims, config: LandmarkConfig): { pairs: number; retrieved: number; landmarks: number } {
  const span = config.blockLength + 1;
  let pairs = 0;
  let retrieved = 0;
  let landmarks = 0;
  for (let i = 0; i < d.querySeq; i++) {
    const p = d.queryOffset + i;
    const blocks = Math.floor(p / span);
    const keep = retrievedBlockCount(blocks, config.topK);
    pairs += Math.min(p + 1, blocks * span + config.blockLength) - blocks * span + blocks + keep * config.blockLength;
    retrieved += keep;
    landmarks += blocks;
  }
  const heads = d.batch * d.queryHeads;
  return { pairs: pairs * heads, retrieved: retrieved * heads, landmarks: landmarks * heads };
}

function checkRunsOnGpu(backend: GpuBackend, config: LandmarkConfig, headDim?: number): void {
  if (config.positions !== 'absolute') {
    throw new ConfigError("landmark: positions 'slot' (RoPE at the reference's slot positions) runs on the CPU only; the GPU kernels take q/k with their encoding applied ('absolute')");
  }
  const bytes = groupedSoftmaxWorkgroupBytes({ headDim: headDim ?? 0, blockLength: config.blockLength });
  if (bytes > backend.context.maxWorkgroupBytes) {
    throw new ConfigError(`landmark: blockLength ${config.blockLength} needs ${bytes} bytes of workgroup memory on the GPU, above the device's ${backend.context.maxWorkgroupBytes}`);
  }
}

const CAUSAL_REASON = 'the grouped softmax is defined for causal attention';

/**
 * Selection + grouped softmax of one validated, causal call; reads back output, lse and selection.
 * `scratchFloats` (score floats per query head and row range) is lowered only by the checks.
 */
export async function landmarkAttend(backend: GpuBackend, config: LandmarkConfig, input: AttentionInput, scratchFloats = SCORE_SCRATCH_FLOATS, topKRowsMax = RETRIEVAL_TOP_K_ROWS_MAX): Promise<AttentionResult> {
  const d = validateAttentionInput(input);
  const plan = landmarkStepPlan(backend, config, d, scratchFloats, topKRowsMax);
  const resident = backend.upload(input, d, plan.extraBytesPerSlot);
  try {
    const run = await plan.run(resident);
    try {
      const { output, lse, selection } = await backend.readResults(resident, run.selection);
      return {
        output,
        lse,
        selection,
        stats: sparseStats(d, plan.pairs, false, run.selectionMs, run.attentionMs),
        backend: { ...backend.info, kernel: plan.kernel },
        diagnostics: plan.diagnostics,
      } as AttentionResult;
    } finally {
      backend.releaseSelection(run.selection);
    }
  } finally {
    backend.release(resident);
  }
}

/**
 * The selection and grouped softmax of a validated call as a step plan (prefill's, and the
 * decoder's over its GPU cache): checks first (typed errors before any GPU work), then `run`
 * selects and attends on a resident call, leaving the selection to the caller.
 */
function landmarkStepPlan(backend: GpuBackend, config: LandmarkConfig, d: AttentionDims, scratchFloats = SCORE_SCRATCH_FLOATS, topKRowsMax = RETRIEVAL_TOP_K_ROWS_MAX) {
  requireCausal(landmarkMethod.id, d.causal, CAUSAL_REASON);
  checkRunsOnGpu(backend, config, d.headDim);
  const { pairs, retrieved, landmarks } = landmarkPairCount(d, config);
  const rows = d.batch * d.queryHeads * d.querySeq;
  return {
    extraBytesPerSlot: landmarkScratchBytesPerSlot(d, config),
    run: (resident: ResidentAttention) =>
      selectThenAttend(backend, resident, landmarkSelectionStep(config, d, backend.context.maxBinding, scratchFloats, topKRowsMax), (r, selection) => runGroupedSoftmaxByBlocks(backend, r, selection, config)),
    pairs,
    kernel: `${backend.info.kernel}+landmark-grouped-softmax`,
    diagnostics: { meanRetrievedBlocks: rows === 0 ? 0 : retrieved / rows, landmarksScored: landmarks },
  };
}

/**
 * `landmark` on the GPU (same id and config schema as {@link landmarkMethod}; `positions: 'slot'`
 * is CPU-only and rejected with a `ConfigError`). Prefill, decode (the KV cache on the device)
 * and `runResident` (landmark selection → grouped softmax on resident buffers; density from
 * the geometry).
 */
export const gpuLandmarkMethod: GpuMethodDefinition = {
  id: landmarkMethod.id,
  family: landmarkMethod.family,
  cpu: landmarkMethod,
  create(backend, rawConfig): GpuAttentionMethod {
    const config = parseConfig(landmarkMethod.id, landmarkConfigSchema, rawConfig);
    checkRunsOnGpu(backend, config);
    return {
      methodId: landmarkMethod.id,
      prefill: (input) => landmarkAttend(backend, config, input),
      // The GPU decoder: K/V on the device (backend-gpu's window decoder, with no kept windows); each
      // step selects and runs the grouped softmax over the cache (decode equals prefill, as on the CPU).
      createDecoder: (shape, options?: GpuDecoderOptions) =>
        createGpuWindowDecoder(backend, shape, NO_WINDOWS, (d) => landmarkStepPlan(backend, config, d), { ...options, validateContext: (k, v) => validateContext(shape, k, v) }),
      async runResident(resident: ResidentAttention, options?: ResidentRunOptions) {
        const d = resident.dims;
        requireCausal(landmarkMethod.id, d.causal, CAUSAL_REASON);
        checkRunsOnGpu(backend, config, d.headDim);
        // Counted on the host (O(Sq)): only when asked for.
        const density = options?.density === false ? undefined : landmarkPairCount(d, config).pairs / densePairCount(d);
        if (config.topK === 0) {
          // Every earlier block is read: no selection rows (they would be rows × S / (ℓ+1) indices); gates are scored in attention.
          return { selectionMs: 0, attentionMs: await runGroupedSoftmax(backend, resident, undefined, config), ...(density === undefined ? {} : { density }) };
        }
        const run = () =>
          withGpuSelection(backend, resident, landmarkSelectionStep(config, d, backend.context.maxBinding), async (selection, selectionMs) => ({
            selectionMs,
            attentionMs: await runGroupedSoftmaxByBlocks(backend, resident, selection, config),
            ...(density === undefined ? {} : { density }),
          }));
        // A decode-shaped call (the backend's split-K calls) records its four passes (landmark scores, top-k,
        // the grouped softmax's partials and merge) into one submission, as a decoder step runs them: only their sum is timed.
        if (backend.executorFor(selectionLayout(config, d), d) !== 'split-k') return residentCall(backend, options, run);
        const { run: timing } = await oneSubmissionRun(backend, run);
        return { ...timing, ...(density === undefined ? {} : { density }) };
      },
    };
  },
};
