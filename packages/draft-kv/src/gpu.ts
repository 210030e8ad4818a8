/**
 * `@sparse-attn/draft-kv/gpu`: the draft-kv methods on `@sparse-attn/backend-gpu` — observation
 * window scoring, pooling, per-KV-head top-C selection and attention over the kept entries as
 * WGSL kernels (see `gpu/`), with the same ids and config schemas as the CPU methods.
 */
import type { GpuMethodDefinition } from '@sparse-attn/backend-gpu';
import { gpuKeyNormMethod, gpuPyramidKvMethod, gpuRandomKvMethod, gpuSnapKvMethod, gpuSpecKvLayerMethod, gpuTovaMethod } from './gpu/gpu-kv-methods.js';
import { gpuStreamingLlmMethod } from './gpu/gpu-streaming-llm.js';

export * from './gpu/gpu-compression.js';
export * from './gpu/gpu-compressing-decoder.js';
export * from './gpu/gpu-kv-methods.js';
export * from './gpu/gpu-streaming-llm.js';
export { gpuChecks } from './gpu/gpu-checks.js';
export { OBSERVER_PARAMS, OBSERVER_ROWS, OBSERVER_TILE, observerPartialsWgsl } from './gpu/observer-partials-wgsl.js';
export { observerLseWgsl } from './gpu/observer-lse-wgsl.js';
export { REDUCTION_CODES, observerScoresWgsl } from './gpu/observer-scores-wgsl.js';
export { POOL_SCORE_PARAMS, poolScoresWgsl } from './gpu/pool-scores-wgsl.js';
export { KEY_NORM_PARAMS, keyNormScoresWgsl } from './gpu/key-norm-scores-wgsl.js';
export { RANDOM_PARAMS, randomScoresWgsl } from './gpu/random-scores-wgsl.js';
export { SELECT_PARAMS, selectKeptEntriesWgsl } from './gpu/select-kept-entries-wgsl.js';
export { SINK_RECENT_BLOCK, SINK_RECENT_PARAMS, sinkRecentRowsWgsl } from './gpu/sink-recent-rows-wgsl.js';
export { MERGE_PARAMS, mergeAttentionWgsl } from './gpu/merge-attention-wgsl.js';

/** Every draft-kv method that runs on the GPU, for `bench --backend gpu`. */
export const gpuMethods: readonly GpuMethodDefinition[] = [gpuSnapKvMethod, gpuPyramidKvMethod, gpuSpecKvLayerMethod, gpuTovaMethod, gpuKeyNormMethod, gpuRandomKvMethod, gpuStreamingLlmMethod];
