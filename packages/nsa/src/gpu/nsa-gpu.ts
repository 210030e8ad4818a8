/**
 * NSA on the GPU: compression (window pooling), compression-probability block scoring, forced
 * blocks, top-n and the sliding-window union all run in WGSL, then the backend's exact sparse
 * executor attends (arXiv:2502.11089; the CPU method is `nsa.ts`, whose selection this reproduces).
 *
 *   pool     k̃_i = mean(K[i·d, i·d + l)) (or [max | min] for 'quest')     (`window-pool-wgsl.ts`)
 *   select   p_slc summed over the GQA group → top-n' ∪ window blocks     (`nsa-select-wgsl.ts`)
 *   attend   one causal softmax over the row's blocks                      (backend's sparse executor)
 *
 * `combine: 'union'` (the default and the training-free setting) runs end to end on the GPU.
 * `combine: 'gated'` is not ported: its GPU method throws a `ConfigError` naming the CPU method.
 * Scratch per KV slot: the pooled windows, NC · D floats (2 · NC · D for 'quest').
 */
import { ConfigError, densePairCount, parseConfig, validateAttentionInput, type AttentionDims } from '@sparse-attn/core';
import { dispatchGrid, type GpuBackend, type GpuMethodDefinition, type GpuSelectionStep } from '@sparse-attn/backend-gpu';
import { completeWindows } from '../block-means.js';
import { selectionShare } from '../method-helpers.js';
import { visibleWindows } from '../nsa-block-selector.js';
import { nsaConfigSchema, nsaMethod, type NsaConfig } from '../nsa.js';
import { assertWorkgroupFits, countSelectionEntries, currentBlockShortfall } from './gpu-helpers.js';
import { NSA_SELECT_PARAMS, nsaSelectWgsl, nsaSelectWorkgroupBytes, type NsaSelectKernelOptions } from './nsa-select-wgsl.js';
import { WINDOW_POOL_PARAMS, WINDOW_POOL_THREADS, windowPoolWgsl } from './window-pool-wgsl.js';

/** Geometry of one NSA call on the GPU. */
export interface NsaPlan {
  readonly kernel: NsaSelectKernelOptions;
  /** Complete compression windows of the call. */
  readonly windows: number;
  /** Entries per CSR row (top-n, plus the window's blocks under 'union'). */
  readonly stride: number;
  /** Bytes of the largest scratch buffer per KV slot (the pooled windows). */
  readonly scratchBytesPerSlot: number;
}

/**
 * Checks that the configuration runs on the GPU and the selection kernel fits the device, and
 * sizes its buffers (throws `ConfigError` before any GPU work).
 */
export function nsaPlan(backend: GpuBackend, d: AttentionDims, config: NsaConfig): NsaPlan {
  if (config.combine !== 'union') {
    throw new ConfigError("nsa: combine 'gated' is not ported to the GPU (its compression and window branches run on the CPU method only); use combine 'union' or the CPU method");
  }
  const windows = completeWindows(d.keySeq, config.compressionBlock, config.compressionStride);
  const maxBlocks = Math.max(1, Math.ceil(d.keySeq / config.selectionBlock));
  const maxPicks = Math.min(config.selectedBlocks, maxBlocks);
  const stride = Math.min(maxBlocks, config.selectedBlocks + (config.window > 0 ? Math.ceil(config.window / config.selectionBlock) + 1 : 0));
  const quest = config.compressionScore === 'quest';
  const kernel: NsaSelectKernelOptions = { headDim: d.headDim, groupSize: d.groupSize, maxWindows: Math.max(1, windows), maxBlocks, maxPicks, quest };
  assertWorkgroupFits('nsa', backend, nsaSelectWorkgroupBytes(kernel), `${windows} compression windows and ${maxBlocks} selection blocks per row`);
  return { kernel, windows, stride, scratchBytesPerSlot: 4 * windows * d.headDim * (quest ? 2 : 1) };
}

/** NSA's selection as a GPU step: pools each chunk's compression windows, then selects every (KV slot, query) row. */
export function nsaSelectionStep(d: AttentionDims, config: NsaConfig, p: NsaPlan): GpuSelectionStep {
  const quest = p.kernel.quest;
  return {
    layout: { kind: 'block', blockSize: config.selectionBlock, headScope: 'kv', rows: d.querySeq, queryBlockSize: 1 },
    stride: p.stride,
    async encodeChunk(e) {
      const [pool, select] = await Promise.all([e.pipeline(windowPoolWgsl({ bounds: quest })), e.pipeline(nsaSelectWgsl(p.kernel))]);
      const slots = e.chunk.slots;
      const pooledFloats = Math.max(1, slots * p.windows * d.headDim);
      const means = e.scratch(4 * pooledFloats);
      const bounds = quest ? e.scratch(8 * pooledFloats) : undefined;
      if (p.windows > 0) {
        const [px, py] = dispatchGrid(Math.ceil((slots * p.windows * d.headDim) / WINDOW_POOL_THREADS));
        const params = e.uniform(WINDOW_POOL_PARAMS, { keySeq: d.keySeq, length: config.compressionBlock, stride: config.compressionStride, windows: p.windows, slots, tilesX: px, dim: d.headDim });
        e.dispatch(pool, [params, e.chunk.k, means, bounds], px, py);
      }
      const [x, y] = dispatchGrid(slots * d.querySeq);
      const params = e.uniform(NSA_SELECT_PARAMS, {
        querySeq: d.querySeq,
        queryOffset: d.queryOffset,
        slots,
        tilesX: x,
        compressionBlock: config.compressionBlock,
        compressionStride: config.compressionStride,
        selectionBlock: config.selectionBlock,
        windows: p.windows,
        selectedBlocks: config.selectedBlocks,
        window: config.window,
        forceInitial: config.forceInitial ? 1 : 0,
        forceLocal: config.forceLocal,
        stride: p.stride,
        unionWindow: 1,
        scale: d.scale,
      });
      e.dispatch(select, [params, e.chunk.q, quest ? bounds : means, e.target.bounds, e.target.indices], x, y);
    },
  };
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
  return { meanVisibleCompressed: visible / rows, meanSelectedBlocks: selected / rows, compressedKvBytesRead: d.batch * d.kvHeads * visible * 4 * d.headDim };
}

/** NSA (union combination) with compression, selection and attention on the GPU; same id, config schema and selection as the CPU method. */
export const gpuNsaMethod: GpuMethodDefinition = {
  id: nsaMethod.id,
  family: nsaMethod.family,
  cpu: nsaMethod,
  create(backend, rawConfig) {
    const config = parseConfig(nsaMethod.id, nsaConfigSchema, rawConfig ?? {});
    return {
      methodId: nsaMethod.id,
      async prefill(input) {
        const d = validateAttentionInput(input);
        if (!d.causal) throw new ConfigError('nsa: causal must be true (the method selects among past keys only), got causal: false');
        const p = nsaPlan(backend, d, config);
        const result = await backend.selectionAttention(input, nsaSelectionStep(d, config, p), { extraBytesPerSlot: p.scratchBytesPerSlot });
        return { ...result, diagnostics: { ...diagnostics(d, config, p.windows), selectionShare: selectionShare(result.stats.selectionMs, result.stats.attentionMs) } };
      },
      async runResident(resident) {
        const d = resident.dims;
        if (!d.causal) throw new ConfigError('nsa: causal must be true (the method selects among past keys only), got causal: false');
        const p = nsaPlan(backend, d, config);
        const { selection, ms: selectionMs } = await backend.runSelection(resident, nsaSelectionStep(d, config, p));
        try {
          const attentionMs = await backend.runSparse(resident, selection);
          const entries = await countSelectionEntries(backend, resident, selection);
          // KV-head rows serve the G query heads of their group; under 'union' every row holds its current block.
          const pairs = d.groupSize * entries * config.selectionBlock - d.batch * d.queryHeads * currentBlockShortfall(d, config.selectionBlock);
          return { selectionMs, attentionMs, density: pairs / densePairCount(d) };
        } finally {
          backend.releaseSelection(selection);
        }
      },
    };
  },
};
