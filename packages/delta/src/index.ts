/**
 * `@sparse-attn/delta`: layer-reuse sparse decoding on the sparse-attn core contracts and the
 * model runtime — DELTA (Δ-layers re-select KV pages that the layers after them reuse),
 * TidalDecode (two token-level selection layers) and a HyLRA-style offline layer planner.
 * `methods` lists the attention-level selectors for apps/bench; `benchmarks` the suites.
 */
import type { MethodDefinition } from '@sparse-attn/core';
import { deltaMethod } from './delta.js';
import { tidalDecodeMethod } from './tidal-decode.js';

export * from './layer-plan.js';
export * from './layer-reuse-policy.js';
export * from './delta.js';
export * from './tidal-decode.js';
export * from './hylra-planner.js';
export { pageScores, selectPages, pageSelection, recentPages } from './select-pages.js';
export { tokenSelection, recentTokenSelection } from './select-tokens.js';
export { topKIndices } from './top-k.js';
export { decodeLogits, unifiedTokenScores, unifiedScoresOfLogits, softmaxRows, type ScoreRow } from './decode-scores.js';
export { selfSelectedAttention, type RowSelector, type RowScores } from './self-selected-attention.js';

/** Every attention-level method of this package, for `MethodRegistry.registerAll`. */
export const methods: MethodDefinition[] = [deltaMethod, tidalDecodeMethod];
export { createTraceStack, stackQuery, appendStackToken, runStackStep, type TraceStack, type TraceStackOptions, type StackLayerResult } from './trace-stack.js';
export {
  benchmarks,
  createDeltaBenchmarkSuites,
  createTraceStackSuite,
  createModelSuite,
  deltaBenchmarkModel,
  type TraceStackBenchmarkOptions,
  type ModelBenchmarkOptions,
} from './delta-benchmark.js';
