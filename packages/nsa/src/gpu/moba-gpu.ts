/**
 * MoBA on the GPU: block pooling, gating and top-k routing, and the exact sparse executor all run
 * on the device (arXiv:2502.13189; the CPU method is `moba.ts`, whose selection this reproduces).
 *
 *   pool    mean(K[j·B, (j+1)·B)) for every complete block            (`window-pool-wgsl.ts`, l = d = B)
 *   route   q_t^h · mean_j, 64 queries × 64 blocks per tile, and the     (`moba-route-wgsl.ts`)
 *           top-k' of the gates over j < IC plus the current block, kept
 *           per query while the tiles go by (no gate-score buffer); a
 *           decode step (≤ 16 queries): one workgroup per row, a block    (`moba-route-decode-wgsl.ts`)
 *           per thread, the workgroup radix top-k
 *   attend  one causal softmax over the union of the routed blocks       (backend's sparse executor)
 *
 * Scratch per KV slot: the pooled means, floor(S / B) · D floats (64 KiB at S = 64k, B = 512,
 * D = 128), besides the CSR rows the backend allocates. The routing kernel takes 8 704 B of
 * workgroup memory plus 512 B per kept past block (9 728 B at topK 3; at most 16 384 B),
 * checked against the device before any GPU work.
 */
import { ConfigError, densePairCount, parseConfig, validateAttentionInput, type AttentionDims } from '@sparse-attn/core';
import { chunkKeyStride, dispatchGrid, residentCall, type GpuBackend, type GpuMethodDefinition, type GpuSelectionStep, selectThenAttend, type GpuDecoderOptions } from '@sparse-attn/backend-gpu';
import { completeWindows } from '../block-means.js';
import { blockPooling } from '../cached-decoder.js';
import { selectionShare } from '../method-helpers.js';
import { mobaConfigSchema, mobaMethod, type MobaConfig } from '../moba.js';
import { createGpuCachedDecoder, residentDecodeStepper, type DecodeStepPlan, type DecoderPool } from './gpu-cached-decoder.js';
import { assertWorkgroupFits, countSelectionEntries, currentBlockShortfall } from './gpu-helpers.js';
import { mobaRouteDecodeWgsl, usesDecodeRouting } from './moba-route-decode-wgsl.js';
import { MOBA_ROUTE_PARAMS, MOBA_ROUTE_ROWS, mobaRouteWgsl, mobaRouteWorkgroupBytes } from './moba-route-wgsl.js';
import { WINDOW_POOL_PARAMS, WINDOW_POOL_THREADS, windowPoolWgsl } from './window-pool-wgsl.js';

/** Geometry of one MoBA call on the GPU. */
export interface MobaPlan {
  readonly pooled: number;
  readonly maxBlocks: number;
  readonly stride: number;
  /** Bytes of scratch per KV slot: the pooled means (the gates never leave the routing kernel). */
  readonly scratchBytesPerSlot: number;
}

/** Sizes MoBA's buffers on the GPU. */
export function mobaPlan(d: AttentionDims, config: MobaConfig): MobaPlan {
  const maxBlocks = Math.max(1, Math.ceil(d.keySeq / config.blockSize));
  const stride = Math.min(config.topK, maxBlocks);
  const pooled = completeWindows(d.keySeq, config.blockSize, config.blockSize);
  return { pooled, maxBlocks, stride, scratchBytesPerSlot: 4 * pooled * d.headDim };
}

/** {@link mobaPlan} after checking that the device gives the routing kernel its workgroup memory (a `ConfigError` before any GPU work otherwise). */
function devicePlan(backend: GpuBackend, d: AttentionDims, config: MobaConfig): MobaPlan {
  const p = mobaPlan(d, config);
  assertWorkgroupFits('moba', backend, mobaRouteWorkgroupBytes(p.stride), `the routing kernel's operand chunks and the merge of its ${MOBA_ROUTE_ROWS} rows' candidates`);
  return p;
}

/**
 * MoBA's selection as a GPU step: pools the block means of each chunk, then routes every (query
 * head, query) row. With a decoder's `pool` the means are kept across steps: only blocks
 * `pool.first …` are pooled (into the pool's buffers).
 */
export function mobaSelectionStep(d: AttentionDims, config: MobaConfig, p: MobaPlan, pool?: DecoderPool): GpuSelectionStep {
  const B = config.blockSize;
  return {
    layout: { kind: 'block', blockSize: B, headScope: 'query', rows: d.querySeq, queryBlockSize: 1 },
    stride: p.stride,
    async encodeChunk(e) {
      // A decode step's few queries: one workgroup per row gates all its blocks at once (moba-route-decode-wgsl.ts).
      const decode = usesDecodeRouting(d.querySeq, p.pooled);
      const routeOptions = { headDim: d.headDim, maxPicks: p.stride };
      const [poolKernel, route] = await Promise.all([e.pipeline(windowPoolWgsl({ bounds: false })), e.pipeline(decode ? mobaRouteDecodeWgsl(routeOptions) : mobaRouteWgsl(routeOptions))]);
      const slots = e.chunk.slots;
      const means = pool ? pool.means[e.index]! : e.scratch(4 * Math.max(1, slots * p.pooled * d.headDim));
      const first = Math.min(pool?.first ?? 0, p.pooled);
      if (p.pooled > first) {
        const [px, py] = dispatchGrid(Math.ceil((slots * (p.pooled - first) * d.headDim) / WINDOW_POOL_THREADS));
        const params = e.uniform(WINDOW_POOL_PARAMS, { keyStride: chunkKeyStride(e.chunk, d), length: B, stride: B, windows: p.pooled - first, first, slots, tilesX: px, dim: d.headDim });
        e.dispatch(poolKernel, [params, e.chunk.k, means], px, py);
      }
      // Every row is written, also those of query tiles with no past block (the current block alone).
      const [x, y] = dispatchGrid(slots * d.groupSize * (decode ? d.querySeq : Math.ceil(d.querySeq / MOBA_ROUTE_ROWS)));
      const params = e.uniform(MOBA_ROUTE_PARAMS, { querySeq: d.querySeq, queryOffset: d.queryOffset, groupSize: d.groupSize, slots, tilesX: x, blockSize: B, pooled: p.pooled, topK: config.topK, stride: p.stride });
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
    const pooling = blockPooling(config.blockSize);
    const decodePlan = (d: AttentionDims): DecodeStepPlan => {
      const p = devicePlan(backend, d, config);
      return {
        extraBytesPerSlot: p.scratchBytesPerSlot,
        run: (resident, pool) => selectThenAttend(backend, resident, mobaSelectionStep(d, config, p, pool)),
        diagnostics: { meanSelectedBlocks: meanSelectedBlocks(d, config) },
      };
    };
    return {
      methodId: mobaMethod.id,
      async prefill(input) {
        const d = validateAttentionInput(input);
        if (!d.causal) throw new ConfigError('moba: causal must be true (the method selects among past keys only), got causal: false');
        const p = devicePlan(backend, d, config);
        const result = await backend.selectionAttention(input, mobaSelectionStep(d, config, p), { extraBytesPerSlot: p.scratchBytesPerSlot });
        return {
          ...result,
          diagnostics: { meanSelectedBlocks: meanSelectedBlocks(d, config), selectionShare: selectionShare(result.stats.selectionMs, result.stats.attentionMs) },
        };
      },
      createDecoder: (shape, options?: GpuDecoderOptions) => createGpuCachedDecoder(backend, shape, pooling, decodePlan, options),
      decodeResident: async (view) => residentDecodeStepper(backend, view, pooling, decodePlan(view.dims)),
      async runResident(resident, options) {
        const d = resident.dims;
        if (!d.causal) throw new ConfigError('moba: causal must be true (the method selects among past keys only), got causal: false');
        const p = devicePlan(backend, d, config);
        return residentCall(backend, options, async () => {
          const { selection, ms: selectionMs } = await backend.runSelection(resident, mobaSelectionStep(d, config, p));
          try {
            const attentionMs = await backend.runSparse(resident, selection);
            // The density costs a count pass and a readback: only when asked for.
            if (options?.density === false) return { selectionMs, attentionMs };
            const entries = await countSelectionEntries(backend, resident, selection);
            // Per query head rows: every row includes its (causally cut) current block.
            const pairs = entries * config.blockSize - d.batch * d.queryHeads * currentBlockShortfall(d, config.blockSize);
            return { selectionMs, attentionMs, density: pairs / densePairCount(d) };
          } finally {
            backend.releaseSelection(selection);
          }
        });
      },
    };
  },
};
