/**
 * `@sparse-attn/landmark/gpu`: this family's methods on `@sparse-attn/backend-gpu` (an optional
 * peer dependency). See the README's "GPU" section for what runs there and what stays on the CPU.
 */
import type { GpuMethodDefinition } from '@sparse-attn/backend-gpu';
import { gpuHipMethod } from './gpu/gpu-hip.js';
import { gpuLandmarkMethod } from './gpu/gpu-landmark.js';
import { gpuLandmarkRetrievalMethod } from './gpu/gpu-landmark-retrieval.js';

export * from './gpu/candidate-score-wgsl.js';
export * from './gpu/retrieval-top-k-wgsl.js';
export * from './gpu/gpu-landmark-retrieval.js';
export * from './gpu/hip-search-wgsl.js';
export * from './gpu/hip-bound-tree-wgsl.js';
export * from './gpu/gpu-hip.js';
export * from './gpu/landmark-top-k-wgsl.js';
export * from './gpu/grouped-softmax-wgsl.js';
export * from './gpu/gpu-landmark.js';
export { gpuChecks } from './gpu/gpu-checks.js';

/** Every method of this package that runs on the GPU, for `bench --backend gpu`. */
export const gpuMethods: readonly GpuMethodDefinition[] = [gpuLandmarkRetrievalMethod, gpuHipMethod, gpuLandmarkMethod];
