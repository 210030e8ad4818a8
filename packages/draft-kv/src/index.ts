/**
 * `@sparse-attn/draft-kv`: draft-guided KV dropping (SpecKV), draft-guided prompt compression
 * (SpecPC), their cascade (SpecKV-PC) and the single-model baselines (SnapKV, PyramidKV, H2O,
 * StreamingLLM, TOVA, key-norm, random), built as scoring → selection → application on core's
 * executor and the model runtime. `methods` lists the attention-level methods and `benchmarks`
 * the suites, for apps/bench.
 */
import type { MethodDefinition } from '@sparse-attn/core';
import { h2oMethod, streamingLlmMethod } from './eviction-methods.js';
import { keyNormMethod, pyramidKvMethod, randomKvMethod, snapKvMethod, specKvLayerMethod, specPcLayerMethod, tovaMethod } from './kv-methods.js';

export * from './pool-scores.js';
export * from './observer-scores.js';
export * from './kv-scorers.js';
export * from './select-kept-entries.js';
export * from './compress-layer.js';
export * from './compressed-attention.js';
export * from './kv-methods.js';
export * from './eviction-tracker.js';
export * from './eviction-methods.js';
export * from './select-prompt-tokens.js';
export * from './draft-model.js';
export * from './kv-press.js';
export * from './press-policy.js';
export * from './speckv.js';
export * from './specpc.js';
export * from './speckv-pc.js';
export * from './draft-harness.js';
export * from './draft-kv-benchmark.js';
export { tinyPair, tinyPrompt, tinyTargetConfig, tinyDraftConfig } from './tiny-models.js';

/** Every attention-level method of this package, for `MethodRegistry.registerAll`. */
export const methods: MethodDefinition[] = [
  snapKvMethod,
  specKvLayerMethod,
  specPcLayerMethod,
  pyramidKvMethod,
  h2oMethod,
  streamingLlmMethod,
  tovaMethod,
  keyNormMethod,
  randomKvMethod,
] as unknown as MethodDefinition[];
