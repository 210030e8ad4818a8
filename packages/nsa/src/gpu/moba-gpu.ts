/**
 * MoBA on the GPU: block pooling, gating and top-k routing, and the exact sparse executor all run
 * on the device (arXiv:2502.13189; the CPU method is `moba.ts`, whose selection this reproduces).
 *
 *   pool    mean(K[j·B, (j+1)·B)) for every complete block            (`window-pool-wgsl.ts`, l = d = B)
 *   route   top-k' of q_t^h · mean_j over j < IC, plus the current block (`moba-select-wgsl.ts`)
 *   attend  one causal softmax over the union of the routed blocks       (backend's sparse executor)
 *
 * Scratch per KV slot: the pooled means, floor(S / B) · D floats; scores live in workgroup memory.
 */
import { ConfigError, densePairCount, parseConfig, validateAttentionInput, type AttentionDims } from '@sparse-attn/core';
import { dispatchGrid, type GpuBackend, type GpuMethodDefinition, type GpuSelectionStep } from '@sparse-attn/backend-gpu';
import { completeWindows } from '../block-means.js';
import { selectionShare } from '../method-helpers.js';
import { mobaConfigSchema, mobaMethod, type MobaConfig } from '../moba.js';
import { createGpuCachedDecoder } from './gpu-cached-decoder.js';
import { assertWorkgroupFits, countSelectionEntries, currentBlockShortfall, selectThenAttend } from './gpu-helpers.js';
import { MOBA_SELECT_PARAMS, MOBA_SELECT_THREADS, mobaSelectWgsl } from './moba-select-wgsl.js';
import { WINDOW_POOL_PARAMS, WINDOW_POOL_THREADS, windowPoolWgsl } from './window-pool-wgsl.js';

/** Geometry of one MoBA call on the GPU. */
export interface MobaPlan {
  readonly pooled: number;
  readonly maxBlocks: number;
  readonly stride: number;
  /** Bytes of the largest scratch buffer per KV slot (the pooled means). */
  readonly scratchBytesPerSlot: number;
}

/** Checks that the routing kernel fits the device and sizes its buffers (throws `ConfigError` before any GPU work). */
export function mobaPlan(methodId: string, backend: GpuBackend, d: AttentionDims, config: MobaConfig): MobaPlan {
  const maxBlocks = Math.max(1, Math.ceil(d.keySeq / config.blockSize));
  const stride = Math.min(config.topK, maxBlocks);
  assertWorkgroupFits(methodId, backend, 4 * (maxBlocks + 2 * MOBA_SELECT_THREADS + stride), `${maxBlocks} key blocks per row`);
  const pooled = completeWindows(d.keySeq, config.blockSize, config.blockSize);
  return { pooled, maxBlocks, stride, scratchBytesPerSlot: 4 * pooled * d.headDim };
}

/** MoBA's selection as a GPU step: pools the block means of each chunk, then routes every (query head, query) row. */
export function mobaSelectionStep(d: AttentionDims, config: MobaConfig, p: MobaPlan): GpuSelectionStep {
  const B = config.blockSize;
  return {
    layout: { kind: 'block', blockSize: B, headScope: 'query', rows: d.querySeq, queryBlockSize: 1 },
    stride: p.stride,
    async encodeChunk(e) {
      const [pool, route] = await Promise.all([
        e.pipeline(windowPoolWgsl({ bounds: false })),
        e.pipeline(mobaSelectWgsl({ headDim: d.headDim, maxBlocks: p.maxBlocks, maxPicks: p.stride })),
      ]);
      const slots = e.chunk.slots;
      const means = e.scratch(4 * Math.max(1, slots * p.pooled * d.headDim));
      if (p.pooled > 0) {
        const [px, py] = dispatchGrid(Math.ceil((slots * p.pooled * d.headDim) / WINDOW_POOL_THREADS));
        const params = e.uniform(WINDOW_POOL_PARAMS, { keySeq: d.keySeq, length: B, stride: B, windows: p.pooled, slots, tilesX: px, dim: d.headDim });
        e.dispatch(pool, [params, e.chunk.k, means], px, py);
      }
      const [x, y] = dispatchGrid(slots * d.groupSize * d.querySeq);
      const params = e.uniform(MOBA_SELECT_PARAMS, { querySeq: d.querySeq, queryOffset: d.queryOffset, groupSize: d.groupSize, slots, tilesX: x, blockSize: B, pooled: p.pooled, topK: config.topK, stride: p.stride });
      e.dispatch(route, [params, e.chunk.q, means, e.target.bounds, e.target.indices], x, y);
    },
  };
}

/** Blocks a MoBA row at position t selects: min(k, IC + 1), known without the selection. */
function meanSelectedBlocks(d: AttentionDims, config: MobaConfig): number {
  let total = 0;
  for (let i = 0; i < d.querySeq; i++) total += Math.min(config.topK, Math.floor((d.queryOffset + i) / config.blockSize) + 1);
  return total / Math.max(1, d.querySeq);
}

/** MoBA with pooling, routing and attention on the GPU; same id, config schema and selection as the CPU method. */
export const gpuMobaMethod: GpuMethodDefinition = {
  id: mobaMethod.id,
  family: mobaMethod.family,
  cpu: mobaMethod,
  create(backend, rawConfig) {
    const config = parseConfig(mobaMethod.id, mobaConfigSchema, rawConfig ?? {});
    return {
      methodId: mobaMethod.id,
      async prefill(input) {
        const d = validateAttentionInput(input);
        if (!d.causal) throw new ConfigError('moba: causal must be true (the method selects among past keys only), got causal: false');
        const p = mobaPlan('moba', backend, d, config);
        const result = await backend.selectionAttention(input, mobaSelectionStep(d, config, p), { extraBytesPerSlot: p.scratchBytesPerSlot });
        return {
          ...result,
          diagnostics: { meanSelectedBlocks: meanSelectedBlocks(d, config), selectionShare: selectionShare(result.stats.selectionMs, result.stats.attentionMs) },
        };
      },
      createDecoder: (shape) =>
        createGpuCachedDecoder(backend, shape, (d) => {
          const p = mobaPlan('moba', backend, d, config);
          return {
            extraBytesPerSlot: p.scratchBytesPerSlot,
            run: (resident) => selectThenAttend(backend, resident, mobaSelectionStep(d, config, p)),
            diagnostics: { meanSelectedBlocks: meanSelectedBlocks(d, config) },
          };
        }),
      async runResident(resident) {
        const d = resident.dims;
        if (!d.causal) throw new ConfigError('moba: causal must be true (the method selects among past keys only), got causal: false');
        const p = mobaPlan('moba', backend, d, config);
        const { selection, ms: selectionMs } = await backend.runSelection(resident, mobaSelectionStep(d, config, p));
        try {
          const attentionMs = await backend.runSparse(resident, selection);
          const entries = await countSelectionEntries(backend, resident, selection);
          // Per query head rows: every row includes its (causally cut) current block.
          const pairs = entries * config.blockSize - d.batch * d.queryHeads * currentBlockShortfall(d, config.blockSize);
          return { selectionMs, attentionMs, density: pairs / densePairCount(d) };
        } finally {
          backend.releaseSelection(selection);
        }
      },
    };
  },
};
