/**
 * `@sparse-attn/nsa/gpu`: this package's methods on the WebGPU backend (`@sparse-attn/backend-gpu`,
 * an optional peer). Each definition has the CPU method's id and config schema and reproduces its
 * selection; `gpuChecks` compares them with the CPU methods (run in headless Chromium by the tests).
 */
import type { GpuCheck, GpuMethodDefinition } from '@sparse-attn/backend-gpu';
import { decodeResidentChecks } from './gpu/decode-resident-checks.js';
import { gpuChecks as methodChecks } from './gpu/gpu-checks.js';
import { gpuMobaMethod } from './gpu/moba-gpu.js';
import { gpuNsaMethod } from './gpu/nsa-gpu.js';
import { gpuHierarchicalIndexerMethod } from './gpu/indexer-gpu.js';

export { gpuMobaMethod, mobaPlan, mobaSelectionStep, type MobaPlan } from './gpu/moba-gpu.js';
export { gpuNsaMethod, nsaPlan, nsaSelectionStep, rangeRowsFor, NSA_RANGE_BYTES, type NsaPlan } from './gpu/nsa-gpu.js';
export { nsaScoreWgsl, nsaScoreWorkgroupBytes, NSA_SCORE_PARAMS, type NsaScoreKernelOptions } from './gpu/nsa-score-tile-wgsl.js';
export { gpuHierarchicalIndexerMethod, indexerPlan, indexerRangeRows, indexerSelectionStep, indexerSlotsPerGroup, INDEXER_RANGE_BYTES, type IndexerPlan } from './gpu/indexer-gpu.js';
export { indexerScoreWgsl, indexerScoreWorkgroupBytes, INDEXER_SCORE_PARAMS, type IndexerScoreKernelOptions } from './gpu/indexer-score-tile-wgsl.js';
export { forSlotGroups } from './gpu/slot-groups.js';
export { copyRangeWgsl, COPY_RANGE_PARAMS, COPY_RANGE_THREADS } from './gpu/copy-range-wgsl.js';
export { gatedScratchBytesPerSlot, runGatedBranches } from './gpu/nsa-gated-gpu.js';
export { createGpuCachedDecoder, residentDecodeStepper, type DecodeStepPlan } from './gpu/gpu-cached-decoder.js';
export { decodeResidentChecks } from './gpu/decode-resident-checks.js';

/** Every GPU check of this package: the methods against the CPU, then the kept-state decode steps. */
export const gpuChecks: readonly GpuCheck[] = [...methodChecks, ...decodeResidentChecks];
export { indexerSelectWgsl, indexerSelectWorkgroupBytes, INDEXER_SELECT_PARAMS, INDEXER_SELECT_THREADS, type IndexerSelectKernelOptions } from './gpu/indexer-select-wgsl.js';
export { rangeRowsWgsl, RANGE_ROWS_PARAMS, RANGE_ROWS_THREADS } from './gpu/range-rows-wgsl.js';
export { gatedMergeWgsl, GATED_MERGE_PARAMS, GATED_MERGE_THREADS } from './gpu/gated-merge-wgsl.js';
export { countEntriesWgsl, COUNT_ENTRIES_PARAMS, COUNT_ENTRIES_THREADS } from './gpu/count-entries-wgsl.js';
export { RADIX_TOP_K_WORKGROUP, RADIX_TOP_K_WORKGROUP_BYTES, radixTopKWgsl } from './gpu/radix-top-k-wgsl.js';
export { nsaSelectWgsl, NSA_SELECT_PARAMS, NSA_SELECT_THREADS, type NsaSelectKernelOptions } from './gpu/nsa-select-wgsl.js';
export { windowPoolWgsl, WINDOW_POOL_PARAMS, WINDOW_POOL_THREADS } from './gpu/window-pool-wgsl.js';
export { mobaRouteWgsl, mobaRouteWorkgroupBytes, MOBA_ROUTE_PARAMS, MOBA_ROUTE_ROWS, MOBA_ROUTE_UNROLLED_CANDIDATES, MOBA_ROUTE_WORKGROUP_BYTES, type MobaRouteKernelOptions } from './gpu/moba-route-wgsl.js';

/** Every method of this package that runs on the GPU, for `bench --backend gpu`. */
export const gpuMethods: readonly GpuMethodDefinition[] = [gpuMobaMethod, gpuNsaMethod, gpuHierarchicalIndexerMethod];
