/**
 * The compress-once KV-dropping methods on the GPU: SnapKV, PyramidKV, SpecKV's per-layer
 * compression, TOVA, key-norm and random. Each plans a call exactly as its CPU definition in
 * `kv-methods.ts` does (the planners there are module-private, so they are restated here from
 * the same exported pieces — `resolveCapacity`, `pyramidBudgets`, `lastQueries` — and the GPU
 * checks compare every method's selection with the CPU method's), then runs
 * {@link compressedAttentionGpu}; decoders follow `createCompressingDecoder`.
 */
import { parseConfig, type MethodDefinition } from '@sparse-attn/core';
import type { GpuMethodDefinition } from '@sparse-attn/backend-gpu';
import { keyNormMethod, lastQueries, pyramidKvMethod, randomKvMethod, snapKvMethod, specKvLayerMethod, tovaMethod } from '../kv-methods.js';
import type { ScoreReduction } from '../observer-scores.js';
import type { PoolingKind } from '../pool-scores.js';
import { pyramidBudgets, resolveCapacity } from '../select-kept-entries.js';
import { compressedAttentionGpu, runCompressionResident, type GpuCompressionPlan, type GpuCompressionPlanner, type GpuKvScorer } from './gpu-compression.js';
import { createGpuCompressingDecoder } from './gpu-compressing-decoder.js';

/** The budget fields every compress-once config has (`budgetFields` in `kv-methods.ts`). */
interface Budgeted {
  readonly capacity: number;
  readonly keepRatio: number | null;
  readonly window: number;
  readonly kernel: number;
  readonly pooling: PoolingKind;
  readonly reduction: ScoreReduction;
}

/** Observers `lastQueries(querySeq, count)` as a contiguous run. */
function observers(querySeq: number, count: number): Pick<GpuCompressionPlan, 'observerFirst' | 'observerCount'> {
  const rows = lastQueries(querySeq, count);
  return { observerFirst: rows[0]!, observerCount: rows.length };
}

/** `windowPlan` of `kv-methods.ts`: window w, capacity resolved on the call's length, the window's queries observe. */
function windowPlan(scorer: GpuKvScorer, config: Budgeted): GpuCompressionPlanner {
  return (keySeq, querySeq) => ({
    scorer,
    window: config.window,
    capacity: resolveCapacity(config, keySeq, config.window),
    pooling: config.pooling,
    kernel: config.kernel,
    reduction: config.reduction,
    ...observers(querySeq, config.window),
  });
}

/**
 * The planner of each GPU method from a raw config (parsed with the CPU schema), by method id:
 * what the checks use to recompute the CPU's scores where a float32 near-tie is suspected.
 */
export const planners: Record<string, (config?: Record<string, unknown>) => GpuCompressionPlanner> = {};

function gpuCompressOnceMethod(cpu: MethodDefinition, plan: (config: Record<string, unknown>) => GpuCompressionPlanner): GpuMethodDefinition {
  planners[cpu.id] = (config) => plan(parseConfig(cpu.id, cpu.configSchema, config) as Record<string, unknown>);
  return {
    id: cpu.id,
    family: cpu.family,
    cpu,
    create(backend, config) {
      const planner = planners[cpu.id]!(config);
      return {
        methodId: cpu.id,
        prefill: (input) => compressedAttentionGpu(backend, input, planner),
        createDecoder: (shape, options) => createGpuCompressingDecoder(backend, shape, planner, options),
        runResident: (resident, options) => runCompressionResident(backend, resident, planner, options),
      };
    },
  };
}

/** SnapKV on the GPU (window queries score the keys, pooled, top C − w plus the window). */
export const gpuSnapKvMethod = gpuCompressOnceMethod(snapKvMethod as unknown as MethodDefinition, (c) => windowPlan('observed-attention', c as unknown as Budgeted));

/** PyramidKV on the GPU: SnapKV's kernels with this layer's share of the pyramid budget. */
export const gpuPyramidKvMethod = gpuCompressOnceMethod(pyramidKvMethod as unknown as MethodDefinition, (c) => {
  const config = c as unknown as Budgeted & { layer: number; layers: number; beta: number };
  const base = windowPlan('observed-attention', config);
  return (keySeq, querySeq) => {
    const total = resolveCapacity(config, keySeq, config.window);
    return { ...base(keySeq, querySeq), capacity: pyramidBudgets(keySeq, total, config.window, config.layers, config.beta)[config.layer]! };
  };
});

/** SpecKV's per-layer compression on the GPU: the last w + L + 1 queries (prompt tail and lookahead) observe. */
export const gpuSpecKvLayerMethod = gpuCompressOnceMethod(specKvLayerMethod as unknown as MethodDefinition, (c) => {
  const config = c as unknown as Budgeted & { lookahead: number };
  return (keySeq, querySeq) => {
    const window = config.window + config.lookahead + 1;
    const promptLength = Math.max(1, keySeq - config.lookahead);
    const capacity = Math.min(keySeq, resolveCapacity(config, promptLength, config.window) + config.lookahead + 1);
    return { scorer: 'observed-attention', window, capacity, pooling: config.pooling, kernel: config.kernel, reduction: config.reduction, ...observers(querySeq, window) };
  };
});

/** TOVA on the GPU: the last query's attention, averaged over the group (the `last-query` scorer). */
export const gpuTovaMethod = gpuCompressOnceMethod(tovaMethod as unknown as MethodDefinition, (c) => {
  const base = windowPlan('observed-attention', c as unknown as Budgeted);
  return (keySeq, querySeq) => ({ ...base(keySeq, querySeq), reduction: 'mean', ...observers(querySeq, 1) });
});

/** Key-norm on the GPU: −‖k_j‖ scores, no observer pass. */
export const gpuKeyNormMethod = gpuCompressOnceMethod(keyNormMethod as unknown as MethodDefinition, (c) => windowPlan('key-norm', c as unknown as Budgeted));

/** Random KV dropping on the GPU: core's mulberry32 draws, computed per entry from its counter. */
export const gpuRandomKvMethod = gpuCompressOnceMethod(randomKvMethod as unknown as MethodDefinition, (c) => {
  const base = windowPlan('random', c as unknown as Budgeted);
  const seed = (c as { seed: number }).seed;
  return (keySeq, querySeq) => ({ ...base(keySeq, querySeq), seed });
});
