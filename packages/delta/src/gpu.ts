/**
 * `@sparse-attn/delta/gpu`: DELTA and TidalDecode at the attention level on the WebGPU backend
 * (`@sparse-attn/backend-gpu`, an optional peer): KV cache, scoring, top-k and sparse attention
 * on the device. `gpuChecks` compares them with the CPU methods.
 */
import type { GpuMethodDefinition } from '@sparse-attn/backend-gpu';
import { gpuDeltaMethod, gpuTidalDecodeMethod } from './gpu/gpu-delta.js';

export { gpuDeltaMethod, gpuTidalDecodeMethod } from './gpu/gpu-delta.js';
export { gpuChecks } from './gpu/gpu-checks.js';
export { ROW_LOGITS_PARAMS, rowLogitsWgsl } from './gpu/row-logits-wgsl.js';
export { ROW_LSE_PARAMS, rowLseWgsl } from './gpu/row-lse-wgsl.js';
export { PAGE_SCORES_PARAMS, pageScoresWgsl } from './gpu/page-scores-wgsl.js';
export { TOP_K_ROWS_PARAMS, TOP_K_ROWS_THREADS, topKRowsWgsl } from './gpu/top-k-rows-wgsl.js';

/** Every method of this package that runs on the GPU. */
export const gpuMethods: readonly GpuMethodDefinition[] = [gpuDeltaMethod, gpuTidalDecodeMethod];
