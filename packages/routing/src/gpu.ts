/**
 * `@sparse-attn/routing/gpu`: the routing family on `@sparse-attn/backend-gpu` (WebGPU). Each
 * definition has its CPU method's id and config schema and reproduces its selection, with the
 * backend's exact sparse executor for attention. Needs the optional peer `@sparse-attn/backend-gpu`.
 */
import type { GpuMethodDefinition } from '@sparse-attn/backend-gpu';
import { gpuBiformerMethod } from './gpu/gpu-biformer.js';
import { gpuRoutingMethod } from './gpu/gpu-routing.js';

export { gpuChecks } from './gpu/gpu-checks.js';
export { biformerGeometry, biformerScratchBytesPerSlot, gpuBiformerAttention, gpuBiformerMethod, runBiformer, type BiformerGeometry, type BiformerRun } from './gpu/gpu-biformer.js';
export {
  fitRoutingCentroids,
  gpuRoutingAttention,
  gpuRoutingMethod,
  routingPlan,
  routingScratchBytesPerSlot,
  runRouting,
  routingSlotsPerGroup,
  runRoutingResident,
  seedFromResident,
  sortSelectionRows,
  type RoutingPhases,
  type RoutingPlan,
  type RoutingRun,
} from './gpu/gpu-routing.js';
export { fitRoutingGpu, kmeansSampleIndices, routingFitPlan, seedCentroids, type GpuRoutingFit, type RoutingFitPlan } from './gpu/gpu-routing-kmeans.js';
export { CENTROID_TILE, CENTROID_TILE_PARAMS, CENTROID_TILE_THREADS, centroidTileWgsl, type CentroidTileMode } from './gpu/centroid-tile-wgsl.js';
export { REGION_MEAN_PARAMS, REGION_MEAN_THREADS, regionMeanWgsl } from './gpu/region-mean-wgsl.js';
export { REGION_AFFINITY_PARAMS, REGION_AFFINITY_TILE, regionAffinityWgsl } from './gpu/region-affinity-wgsl.js';
export { REGION_TOP_K_ROWS_MAX, REGION_TOP_K_ROWS_PARAMS, REGION_TOP_K_ROWS_THREADS, regionTopKRowsWgsl } from './gpu/region-top-k-rows-wgsl.js';
export { REGION_TOP_K_PARAMS, REGION_TOP_K_THREADS, regionTopKWgsl } from './gpu/region-top-k-wgsl.js';

/** The routing family's methods that run on the GPU (`routing-causal` stays on the CPU). */
export const gpuMethods: readonly GpuMethodDefinition[] = [gpuBiformerMethod, gpuRoutingMethod];
