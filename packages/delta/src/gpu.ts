/**
 * `@sparse-attn/delta/gpu`: DELTA and TidalDecode at the attention level on the WebGPU backend
 * (`@sparse-attn/backend-gpu`, an optional peer): KV cache, scoring, top-k and sparse attention
 * on the device; and DELTA's model-level layer reuse as a GPU layer stack
 * (`createGpuDeltaStack`, the benchmark `runDeltaStackDecode`). `gpuChecks` compares them with
 * the CPU methods and policy.
 */
import type { BenchmarkSuite } from '@sparse-attn/core';
import type { GpuMethodDefinition } from '@sparse-attn/backend-gpu';
import { deltaStackSuite } from './gpu/delta-stack-suite.js';
import { gpuDeltaMethod, gpuTidalDecodeMethod } from './gpu/gpu-delta.js';

export { gpuDeltaMethod, gpuTidalDecodeMethod } from './gpu/gpu-delta.js';
export { gpuChecks } from './gpu/gpu-checks.js';
export {
  createGpuDeltaStack,
  decodeStackDims,
  deltaStackRows,
  resolveDeltaStackPlan,
  runDeltaStackDecode,
  type DeltaStackBenchOptions,
  type DeltaStackBenchResult,
  type GpuDeltaStack,
  type GpuDeltaStackOptions,
  type StackMode,
  type StackRunOptions,
  type StackTiming,
} from './gpu/gpu-delta-stack.js';
export { deltaStackSuite } from './gpu/delta-stack-suite.js';
export { ROW_LOGITS_PARAMS, rowLogitsWgsl } from './gpu/row-logits-wgsl.js';
export { ROW_LSE_PARAMS, rowLseWgsl } from './gpu/row-lse-wgsl.js';
export { PAGE_SCORES_PARAMS, PAGE_SCORES_THREADS, pageScoreGroups, pageScoresWgsl, pagesPerScoreGroup } from './gpu/page-scores-wgsl.js';
export { TOP_K_ROWS_PARAMS, TOP_K_ROWS_THREADS, topKRowsWgsl } from './gpu/top-k-rows-wgsl.js';

/** Every method of this package that runs on the GPU. */
export const gpuMethods: readonly GpuMethodDefinition[] = [gpuDeltaMethod, gpuTidalDecodeMethod];

/** GPU-only benchmark suites (the bench adds them to the family's): DELTA's layer-stack decode. */
export const benchmarks: readonly BenchmarkSuite[] = [deltaStackSuite];
