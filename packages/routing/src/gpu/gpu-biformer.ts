/**
 * BiFormer bi-level routing attention on the GPU: the CPU `biformer` method (spec routing.md §14,
 * `biformer-attention.ts`) with every step on resident buffers.
 *
 *   1. region means of the keys and of the queries        (`regionMeanWgsl`, call-wide buffers)
 *   2. region-to-region affinity per routing head          (`regionAffinityWgsl`, 64×64-region
 *                                                           register tiles, (S/R)² per head)
 *   3. top-k key regions per query region, diagonal forced (`regionTopKRowsWgsl`: one thread per
 *                                                           query region, k ≤ 16 in registers;
 *                                                           `regionTopKWgsl` above that; CSR rows)
 *   4. the backend's exact sparse executor over the block selection (block = region)
 *
 * Steps 1–3 run in one pass, timed as selection; step 4 as attention. The region means go to
 * buffers that span the whole call (not the chunk), because the `shared` routing graph sums over
 * every query head of a batch and a chunk boundary may split a batch: the first chunk's encoding
 * dispatches the means of every chunk, ahead of every chunk's affinity.
 */
import { densePairCount, sparseStats, validateAttentionInput, type AttentionDims, type AttentionInput, type Selection, type SparseAttentionResult } from '@sparse-attn/core';
import { chunkKeyStride, countPairs, dispatchGrid, residentCall, type GpuAttentionMethod, type GpuBackend, type GpuMethodDefinition, type GpuSelection, type GpuSelectionStep, type ResidentAttention, WEBGPU_FLAGS } from '@sparse-attn/backend-gpu';
import { biformerConfigSchema, biformerMethod, type BiformerConfig } from '../biformer-attention.js';
import { parseConfig } from '@sparse-attn/core';
import { REGION_AFFINITY_PARAMS, REGION_AFFINITY_TILE, regionAffinityWgsl } from './region-affinity-wgsl.js';
import { REGION_MEAN_PARAMS, REGION_MEAN_THREADS, regionMeanWgsl } from './region-mean-wgsl.js';
import { REGION_TOP_K_ROWS_MAX, REGION_TOP_K_ROWS_PARAMS, REGION_TOP_K_ROWS_THREADS, regionTopKRowsWgsl } from './region-top-k-rows-wgsl.js';
import { REGION_TOP_K_PARAMS, regionTopKWgsl } from './region-top-k-wgsl.js';

const { STORAGE, COPY_SRC } = WEBGPU_FLAGS;

/** The region geometry of a call, computed exactly as the CPU method does. */
export interface BiformerGeometry {
  readonly keyRegions: number;
  /** Region of the first query. */
  readonly firstRegion: number;
  /** Query regions the call's queries touch. */
  readonly queryRegions: number;
  /** Whether the queries start on a region boundary (then one selection row per region, else per query). */
  readonly aligned: boolean;
  readonly rowsPerHead: number;
  /** Largest routed regions per row: min(topK, keyRegions). */
  readonly stride: number;
  readonly shared: boolean;
}

/** The CPU method's region geometry for a call. */
export function biformerGeometry(d: AttentionDims, config: BiformerConfig): BiformerGeometry {
  const R = config.regionSize;
  const keyRegions = Math.ceil(d.keySeq / R);
  const firstRegion = Math.floor(d.queryOffset / R);
  const queryRegions = Math.floor((d.keySeq - 1) / R) - firstRegion + 1;
  const aligned = d.queryOffset % R === 0;
  return {
    keyRegions,
    firstRegion,
    queryRegions,
    aligned,
    rowsPerHead: aligned ? queryRegions : d.querySeq,
    stride: Math.min(config.topK, keyRegions),
    shared: config.routingScope === 'shared',
  };
}

/**
 * Bytes per KV slot of the largest per-chunk scratch (the affinity scores of the slot's routing
 * heads), for the backend's chunking.
 */
export function biformerScratchBytesPerSlot(d: AttentionDims, config: BiformerConfig): number {
  const g = biformerGeometry(d, config);
  return 4 * (g.shared ? 1 : d.groupSize) * g.queryRegions * g.keyRegions;
}

/** Timings and the selection (still on the GPU) of one BiFormer run on a resident call. */
export interface BiformerRun {
  readonly selection: GpuSelection;
  readonly selectionMs: number;
  readonly attentionMs: number;
}

/**
 * Runs BiFormer's routing and attention on a resident call; the output lands in the chunks'
 * `out`/`lse`. The caller frees `selection` with `backend.releaseSelection`.
 */
export async function runBiformer(backend: GpuBackend, resident: ResidentAttention, config: BiformerConfig): Promise<BiformerRun> {
  const d = resident.dims;
  const g = biformerGeometry(d, config);
  const R = config.regionSize;
  const device = backend.context.device;
  const queryMeans = device.createBuffer({ size: Math.max(16, 4 * d.batch * d.queryHeads * g.queryRegions * d.headDim), usage: STORAGE | COPY_SRC });
  const keyMeans = device.createBuffer({ size: Math.max(16, 4 * d.batch * d.kvHeads * g.keyRegions * d.headDim), usage: STORAGE | COPY_SRC });
  try {
    const step: GpuSelectionStep = {
      layout: { kind: 'block', blockSize: R, headScope: g.shared ? 'kv' : 'query', rows: g.rowsPerHead, queryBlockSize: g.aligned ? R : 1 },
      stride: g.stride,
      async encodeChunk(encoder) {
        // The region means of every chunk first, in the same pass (dispatches in one pass run in
        // order, each seeing the previous ones' writes): the shared graph of a batch reads query
        // means of other chunks.
        if (encoder.index === 0) {
          const pipeline = await encoder.pipeline(regionMeanWgsl());
          for (const chunk of resident.chunks) {
            const pools = [
              // Key slots lie the chunk's keyStride rows apart (a KV cache's capacity).
              { x: chunk.k, out: keyMeans, slots: chunk.slots, rowsPerSlot: chunkKeyStride(chunk, d), regions: g.keyRegions, first: 0, lo: 0, outSlot0: chunk.slot0 },
              { x: chunk.q, out: queryMeans, slots: chunk.slots * d.groupSize, rowsPerSlot: d.querySeq, regions: g.queryRegions, first: g.firstRegion, lo: d.queryOffset, outSlot0: chunk.slot0 * d.groupSize },
            ];
            for (const p of pools) {
              const [x, y] = dispatchGrid(Math.ceil((p.slots * p.regions * d.headDim) / REGION_MEAN_THREADS));
              const params = encoder.uniform(REGION_MEAN_PARAMS, { ...p, dim: d.headDim, regionSize: R, hi: d.keySeq, tilesX: x });
              encoder.dispatch(pipeline, [params, p.x, p.out], x, y);
            }
          }
        }
        const registerTopK = g.stride <= REGION_TOP_K_ROWS_MAX;
        const [affinity, topK] = await Promise.all([
          encoder.pipeline(regionAffinityWgsl(d.headDim)),
          encoder.pipeline(registerTopK ? regionTopKRowsWgsl(g.stride) : regionTopKWgsl()),
        ]);
        const { chunk, target } = encoder;
        const perSlot = g.shared ? 1 : d.groupSize;
        const selSlots = chunk.slots * perSlot;
        const scores = encoder.scratch(4 * selSlots * g.queryRegions * g.keyRegions);
        const rowTiles = Math.ceil(g.queryRegions / REGION_AFFINITY_TILE);
        const columnTiles = Math.ceil(g.keyRegions / REGION_AFFINITY_TILE);
        const [ax, ay] = dispatchGrid(selSlots * rowTiles * columnTiles);
        const common = { selSlots, queryRegions: g.queryRegions, keyRegions: g.keyRegions, firstRegion: g.firstRegion, causal: d.causal ? 1 : 0 };
        const affinityParams = encoder.uniform(REGION_AFFINITY_PARAMS, {
          ...common,
          selSlot0: chunk.slot0 * perSlot,
          sharedGraph: g.shared ? 1 : 0,
          groupSize: d.groupSize,
          queryHeads: d.queryHeads,
          width: (g.shared ? d.queryHeads : 1) * d.headDim,
          rowTiles,
          columnTiles,
          tilesX: ax,
        });
        encoder.dispatch(affinity, [affinityParams, queryMeans, keyMeans, scores], ax, ay);
        const [tx, ty] = dispatchGrid(registerTopK ? Math.ceil((selSlots * g.queryRegions) / REGION_TOP_K_ROWS_THREADS) : selSlots * g.queryRegions);
        const topKParams = encoder.uniform(registerTopK ? REGION_TOP_K_ROWS_PARAMS : REGION_TOP_K_PARAMS, {
          ...common,
          includeDiagonal: config.includeDiagonal ? 1 : 0,
          topK: config.topK,
          stride: g.stride,
          rowsPerHead: g.rowsPerHead,
          querySeq: d.querySeq,
          queryOffset: d.queryOffset,
          regionSize: R,
          aligned: g.aligned ? 1 : 0,
          tilesX: tx,
        });
        encoder.dispatch(topK, [topKParams, scores, target.bounds, target.indices], tx, ty);
      },
    };
    const { selection, ms: routeMs } = await backend.runSelection(resident, step);
    try {
      const attentionMs = await backend.runSparse(resident, selection);
      return { selection, selectionMs: routeMs, attentionMs };
    } catch (error) {
      backend.releaseSelection(selection);
      throw error;
    }
  } finally {
    // Freed once the recorded work has run (inside `backend.oneSubmission`, after its submission).
    backend.discard(queryMeans, keyMeans);
  }
}

/** BiFormer prefill on the GPU: upload, {@link runBiformer}, read back output, lse and selection. */
export async function gpuBiformerAttention(backend: GpuBackend, input: AttentionInput, config: BiformerConfig): Promise<SparseAttentionResult> {
  const d = validateAttentionInput(input);
  const resident = backend.upload(input, d, biformerScratchBytesPerSlot(d, config));
  try {
    const run = await runBiformer(backend, resident, config);
    let selection: Selection;
    try {
      selection = await backend.readSelection(run.selection);
    } finally {
      backend.releaseSelection(run.selection);
    }
    const { output, lse } = await backend.readOutput(resident);
    const pairs = countPairs(selection, d);
    const g = biformerGeometry(d, config);
    return {
      output,
      lse,
      selection,
      stats: sparseStats(d, pairs, selection.headScope === 'kv', run.selectionMs, run.attentionMs),
      backend: backend.info,
      // The CPU method's diagnostics.
      diagnostics: { regions: g.keyRegions, regionSize: config.regionSize, routedRegions: g.stride, keysPerQuery: pairs / (d.batch * d.queryHeads * d.querySeq) },
    };
  } finally {
    backend.release(resident);
  }
}

/**
 * `biformer` on the GPU: same id and config schema as the CPU method, same regions routed, same
 * output to float32 rounding. Decode stays on the CPU (`biformerMethod.create(config).createDecoder`).
 */
export const gpuBiformerMethod: GpuMethodDefinition = {
  id: biformerMethod.id,
  family: biformerMethod.family,
  cpu: biformerMethod,
  create: (backend, config): GpuAttentionMethod => {
    const resolved = parseConfig(biformerMethod.id, biformerConfigSchema, config);
    return {
      methodId: biformerMethod.id,
      prefill: (input) => gpuBiformerAttention(backend, input, resolved),
      runResident: (resident, options) =>
        residentCall(backend, options, async () => {
          const run = await runBiformer(backend, resident, resolved);
          try {
            const timings = { selectionMs: run.selectionMs, attentionMs: run.attentionMs };
            // The density costs a readback of the selection: only when asked for.
            if (options?.density === false) return timings;
            const selection = await backend.readSelection(run.selection);
            return { ...timings, density: countPairs(selection, resident.dims) / densePairCount(resident.dims) };
          } finally {
            backend.releaseSelection(run.selection);
          }
        }),
    };
  },
};
