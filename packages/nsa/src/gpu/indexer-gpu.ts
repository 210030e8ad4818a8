/**
 * The hierarchical (HISA-style) token indexer on the GPU: block pooling, the two-stage search and
 * the exact sparse executor on the device (spec §13; the CPU method is `hierarchical-indexer.ts`).
 *
 *   pool    mean(K_j) for every complete block                   (`window-pool-wgsl.ts`, l = d = B)
 *   search  top-c blocks by q̄ · mean_j, then top-K tokens         (`indexer-select-wgsl.ts`)
 *   attend  softmax over the row's K tokens, per query head       (backend's sparse executor)
 *
 * Differences from the CPU method: scores are float32 (the CPU's dot products sum in float64), so
 * a token whose score ties the K-th within float32 rounding can be swapped for its near-twin; the
 * `indexerIoU` diagnostic (a flat scan of every visible key for sampled queries) is not computed.
 */
import { ConfigError, densePairCount, parseConfig, validateAttentionInput, type AttentionDims } from '@sparse-attn/core';
import { dispatchGrid, type GpuBackend, type GpuMethodDefinition, type GpuSelectionStep, type ResidentAttention } from '@sparse-attn/backend-gpu';
import { completeWindows } from '../block-means.js';
import { hierarchicalIndexerConfigSchema, hierarchicalIndexerMethod, type HierarchicalIndexerConfig } from '../hierarchical-indexer.js';
import { selectionShare } from '../method-helpers.js';
import { createGpuCachedDecoder } from './gpu-cached-decoder.js';
import { assertWorkgroupFits, countSelectionEntries, selectThenAttend } from './gpu-helpers.js';
import { INDEXER_SELECT_PARAMS, indexerSelectWgsl, indexerSelectWorkgroupBytes, type IndexerSelectKernelOptions } from './indexer-select-wgsl.js';
import { WINDOW_POOL_PARAMS, WINDOW_POOL_THREADS, windowPoolWgsl } from './window-pool-wgsl.js';

/** Geometry of one indexer call on the GPU. */
export interface IndexerPlan {
  readonly kernel: IndexerSelectKernelOptions;
  readonly pooled: number;
  /** Tokens per CSR row, min(K, keySeq). */
  readonly stride: number;
  /** Bytes of the largest per-KV-slot buffer: the CSR rows (Sq · stride u32) or the pooled means. */
  readonly scratchBytesPerSlot: number;
}

/** Checks that the kernel fits the device and sizes the buffers (throws `ConfigError` before any GPU work). */
export function indexerPlan(backend: GpuBackend, d: AttentionDims, config: HierarchicalIndexerConfig): IndexerPlan {
  const maxBlocks = Math.max(1, Math.ceil(d.keySeq / config.blockSize));
  const maxKept = Math.min(config.candidateBlocks, maxBlocks);
  const kernel: IndexerSelectKernelOptions = { headDim: d.headDim, groupSize: d.groupSize, maxBlocks, maxKept, maxCandidates: maxKept * config.blockSize };
  assertWorkgroupFits('hierarchical-indexer', backend, indexerSelectWorkgroupBytes(kernel), `${maxKept} candidate blocks of ${config.blockSize} keys and ${maxBlocks} blocks per row`);
  const pooled = completeWindows(d.keySeq, config.blockSize, config.blockSize);
  const stride = Math.max(1, Math.min(config.topK, d.keySeq));
  return { kernel, pooled, stride, scratchBytesPerSlot: 4 * Math.max(pooled * d.headDim, d.querySeq * stride) };
}

/** The indexer's selection as a GPU step (token rows per KV slot and query). */
export function indexerSelectionStep(d: AttentionDims, config: HierarchicalIndexerConfig, p: IndexerPlan): GpuSelectionStep {
  return {
    layout: { kind: 'token', blockSize: 1, headScope: 'kv', rows: d.querySeq, queryBlockSize: 1 },
    stride: p.stride,
    async encodeChunk(e) {
      const [pool, select] = await Promise.all([e.pipeline(windowPoolWgsl({ bounds: false })), e.pipeline(indexerSelectWgsl(p.kernel))]);
      const slots = e.chunk.slots;
      const means = e.scratch(4 * Math.max(1, slots * p.pooled * d.headDim));
      if (p.pooled > 0) {
        const [px, py] = dispatchGrid(Math.ceil((slots * p.pooled * d.headDim) / WINDOW_POOL_THREADS));
        const params = e.uniform(WINDOW_POOL_PARAMS, { keySeq: d.keySeq, length: config.blockSize, stride: config.blockSize, windows: p.pooled, slots, tilesX: px, dim: d.headDim });
        e.dispatch(pool, [params, e.chunk.k, means], px, py);
      }
      const [x, y] = dispatchGrid(slots * d.querySeq);
      const params = e.uniform(INDEXER_SELECT_PARAMS, {
        querySeq: d.querySeq,
        queryOffset: d.queryOffset,
        slots,
        tilesX: x,
        blockSize: config.blockSize,
        pooled: p.pooled,
        candidateBlocks: config.candidateBlocks,
        topK: config.topK,
        stride: p.stride,
        keySeq: d.keySeq,
      });
      e.dispatch(select, [params, e.chunk.q, e.chunk.k, means, e.target.bounds, e.target.indices], x, y);
    },
  };
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

function assertChunksBind(backend: GpuBackend, resident: ResidentAttention, p: IndexerPlan): void {
  const widest = Math.max(...resident.chunks.map((c) => c.slots)) * resident.dims.querySeq * p.stride * 4;
  if (widest > backend.context.maxBinding) {
    throw new ConfigError(`hierarchical-indexer: a chunk's token rows need ${widest} bytes, above the device's largest binding (${backend.context.maxBinding}); allocate the resident with extraBytesPerSlot = indexerPlan(...).scratchBytesPerSlot`);
  }
}

/** The hierarchical indexer with pooling, both search stages and attention on the GPU. */
export const gpuHierarchicalIndexerMethod: GpuMethodDefinition = {
  id: hierarchicalIndexerMethod.id,
  family: hierarchicalIndexerMethod.family,
  cpu: hierarchicalIndexerMethod,
  create(backend, rawConfig) {
    const config = parseConfig(hierarchicalIndexerMethod.id, hierarchicalIndexerConfigSchema, rawConfig ?? {});
    return {
      methodId: hierarchicalIndexerMethod.id,
      async prefill(input) {
        const d = validateAttentionInput(input);
        if (!d.causal) throw new ConfigError('hierarchical-indexer: causal must be true (the method selects among past keys only), got causal: false');
        const p = indexerPlan(backend, d, config);
        const result = await backend.selectionAttention(input, indexerSelectionStep(d, config, p), { extraBytesPerSlot: p.scratchBytesPerSlot });
        return { ...result, diagnostics: { scannedShare: scannedShare(d, config), selectionShare: selectionShare(result.stats.selectionMs, result.stats.attentionMs) } };
      },
      createDecoder: (shape) =>
        createGpuCachedDecoder(backend, shape, (d) => {
          const p = indexerPlan(backend, d, config);
          return {
            extraBytesPerSlot: p.scratchBytesPerSlot,
            run: (resident) => selectThenAttend(backend, resident, indexerSelectionStep(d, config, p)),
            diagnostics: { scannedShare: scannedShare(d, config) },
          };
        }),
      async runResident(resident) {
        const d = resident.dims;
        if (!d.causal) throw new ConfigError('hierarchical-indexer: causal must be true (the method selects among past keys only), got causal: false');
        const p = indexerPlan(backend, d, config);
        assertChunksBind(backend, resident, p);
        const { selection, ms: selectionMs } = await backend.runSelection(resident, indexerSelectionStep(d, config, p));
        try {
          const attentionMs = await backend.runSparse(resident, selection);
          // Every token of a row is ≤ t, and a KV row serves its group's G query heads.
          const pairs = d.groupSize * (await countSelectionEntries(backend, resident, selection));
          return { selectionMs, attentionMs, density: pairs / densePairCount(d) };
        } finally {
          backend.releaseSelection(selection);
        }
      },
    };
  },
};
