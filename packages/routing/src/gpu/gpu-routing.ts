/**
 * The Routing Transformer's balanced routing (`routing`, spec routing.md §3; CPU:
 * `balancedRoutingPrefill`) on the GPU, on resident buffers:
 *
 *   1. k-means: keys and queries normalised, Lloyd iterations on the seeded subsample from the
 *      CPU's k-means++ seeding (uploaded; `gpu-routing-kmeans.ts`);
 *   2. membership: key and query similarities to the centroids, balanced top-w per cluster, plus
 *      each key's top-`keyClusters` and each query's top-`queryClusters` centroids
 *      (`balanced+nearest`);
 *   3. selection: per query row, the visible keys of its clusters ∪ sinks ∪ local window, counted,
 *      scanned into offsets, then written as compact CSR rows (`routing-selection-wgsl.ts`);
 *   4. the backend's exact sparse executor over the token selection (`combine: 'union'`).
 *
 * Only the per-chunk entry totals (one u32 per chunk) are read back between the count and the
 * write, to size the selection buffer: it holds exactly the selected pairs, never rows × S.
 */
import { ConfigError, densePairCount, parseConfig, sparseStats, validateAttentionInput, type AttentionDims, type AttentionInput, type Selection, type SparseAttentionResult } from '@sparse-attn/core';
import { chunkKeyStride, countPairs, dispatchGrid, residentCall, type ChunkEncoder, type GpuBufferPool, type GpuAttentionMethod, type GpuBackend, type GpuMethodDefinition, type GpuSelection, type ResidentAttention, WEBGPU_FLAGS } from '@sparse-attn/backend-gpu';
import { routingConfigSchema, type RoutingConfig } from '../routing-config.js';
import { routingMethod } from '../routing-method.js';
import { headSeed } from '../balanced-routing-attention.js';
import { resolveSampleSize } from '../routing-config.js';
import { sphericalKMeans } from '../spherical-kmeans.js';
import { clusterMembership, clusterPartialBytesPerQuerySlot, type MembershipBits, runClusterExecutor } from './gpu-routing-clusters.js';
import { nearestBitsWgsl, SIMILARITY_BLOCK, SIMILARITY_FUSED_TOP_R, SIMILARITY_PARAMS, SIMILARITY_TILE, SIM_TOP_THREADS, similarityTileWgsl, simTopWgsl } from './similarity-tile-wgsl.js';
import { encodeRoutingCentroids, encodeRoutingNormalize, encodeRoutingSample, routingFitPlan, seedCentroids, type RoutingFitPlan } from './gpu-routing-kmeans.js';
import {
  ROUTING_PARAMS,
  ROUTING_THREADS,
  balancedTopWWgsl,
  clusterCountWgsl,
  clusterListWgsl,
  clusterOffsetsWgsl,
  headScanWgsl,
  packRowFlagsWgsl,
  routedRowsWgsl,
  rowScanWgsl,
} from './routing-selection-wgsl.js';

const { STORAGE, COPY_SRC, COPY_DST } = WEBGPU_FLAGS;

type Buffer = ReturnType<ChunkEncoder['scratch']>;

/** Scratch up to this size stays the encoder's own (zeroed; the backend reuses such buffers itself). */
const POOLED_MIN_BYTES = 4 * 1024 * 1024;

/**
 * `encoder` whose `scratch` takes pooled buffers above {@link POOLED_MIN_BYTES} (named by the
 * order of those calls in the pass; their contents are not zeroed). Smaller scratch keeps the
 * encoder's zero-initialised buffers, which counters such as the seeding's step rely on.
 */
function pooledEncoder<E extends ChunkEncoder>(encoder: E, pool: GpuBufferPool | undefined, pass: string): E {
  if (!pool) return encoder;
  let n = 0;
  return { ...encoder, scratch: (bytes: number) => (bytes <= POOLED_MIN_BYTES ? encoder.scratch(bytes) : pool.take(`${pass}:${encoder.index}:${n++}`, bytes)) };
}

/** The CPU method's sizes for a call. */
export interface RoutingPlan extends RoutingFitPlan {
  /** Keys per cluster (balanced top-w). */
  readonly window: number;
  /** Queries per cluster (balanced top-w of the queries). */
  readonly queryWindow: number;
  /** Nearest clusters each key / query joins (0 with `membership: 'balanced'`). */
  readonly keyClusters: number;
  readonly queryClusters: number;
  /** Entries of one KV slot's cluster lists (an upper bound of Σ_c |K_c|). */
  readonly listCapacity: number;
  /** Entries of one query slot's cluster query lists (an upper bound of Σ_c |Q_c|). */
  readonly queryListCapacity: number;
}

/** The plan of a routing call; throws the GPU path's `ConfigError`s (sharedQK, combine 'mean'). */
export function routingPlan(d: AttentionDims, config: RoutingConfig): RoutingPlan {
  if (config.combine !== 'union') throw new ConfigError("routing: combine 'mean' is not on the GPU path (the GPU runs the union)");
  const fit = routingFitPlan(d, config);
  const C = fit.clusters;
  const window = Math.min(d.keySeq, config.window > 0 ? config.window : Math.ceil(d.keySeq / C));
  const queryWindow = Math.min(d.querySeq, Math.max(1, Math.ceil((window * d.querySeq) / d.keySeq)));
  const nearest = config.membership === 'balanced+nearest';
  const keyClusters = nearest ? Math.min(config.keyClusters, C) : 0;
  return {
    ...fit,
    window,
    queryWindow,
    keyClusters,
    queryClusters: nearest ? Math.min(config.queryClusters, C) : 0,
    listCapacity: Math.min(C * d.keySeq, C * window + keyClusters * d.keySeq),
    queryListCapacity: Math.min(C * d.querySeq, C * queryWindow + (nearest ? Math.min(config.queryClusters, C) : 0) * d.querySeq),
  };
}

/**
 * Bytes per KV slot of the largest per-chunk buffer (the similarity columns of the larger side,
 * `C · max(keySeq, groupSize · querySeq)` floats), for the backend's chunking.
 */
export function routingScratchBytesPerSlot(d: AttentionDims, plan: Pick<RoutingPlan, 'clusters'>): number {
  return 4 * plan.clusters * Math.max(d.keySeq, d.groupSize * d.querySeq);
}

/** A routing run's selection (on the GPU; none from the cluster executor) and timings. */
export interface RoutingRun {
  readonly selection?: GpuSelection;
  readonly selectionMs: number;
  readonly attentionMs: number;
  readonly plan: RoutingPlan;
  /** Query–key pairs selected (every entry is a visible key, without repeats). */
  readonly pairs: number;
  /**
   * `selectionMs` split: `membershipMs` = normalisation, similarities, balanced top-w and nearest
   * bits (and the k-means when it ran inside this call); `selectionMs` = cluster lists, row
   * counts, offsets and the CSR write.
   */
  readonly phases: { readonly membershipMs: number; readonly selectionMs: number };
}

type MembershipSide = { readonly rows: Buffer; readonly rowBase: number; readonly rowStride: number; readonly affine: Buffer; readonly bits: MembershipBits['keyBits']; readonly slots: number; readonly count: number; readonly groupSize: number; readonly r: number };

/** The similarity kernels' parameters for one side (keys or queries). */
function similarityValues(encoder: ChunkEncoder, side: MembershipSide, clusters: number) {
  return { slots: side.slots, count: side.count, rowStride: side.rowStride, clusters, slotBase: encoder.chunk.slot0, groupSize: side.groupSize, rowTiles: Math.ceil(side.count / SIMILARITY_BLOCK), clusterTiles: Math.ceil(clusters / SIMILARITY_TILE.rows) };
}

/**
 * Records the similarity columns of one side to the centroids and their blocks' largest keys (the
 * tiled kernel, `similarity-tile-wgsl.ts`), and with `nearest` every row's top-r centroids.
 */
async function dispatchSimilarities(encoder: ChunkEncoder, side: MembershipSide, centroids: Buffer, clusters: number, sims: Buffer, blockKeys: Buffer, mode: number, nearest?: Buffer): Promise<void> {
  const values = similarityValues(encoder, side, clusters);
  const [x, y] = dispatchGrid(side.slots * values.rowTiles);
  const params = encoder.uniform(SIMILARITY_PARAMS, { ...values, tilesX: x, rowBase: side.rowBase, mode }, []);
  const code = similarityTileWgsl(encoder.dims.headDim, nearest ? side.r : 0);
  encoder.dispatch(await encoder.pipeline(code), [params, side.rows, centroids, sims, blockKeys, side.affine, ...(nearest ? [nearest] : [])], x, y);
}

/**
 * Records, for `balanced+nearest`, every row's top-r centroids set in the side's bits (after the
 * balanced top-w, which zeroes them): from the similarity tile's `nearest` output when it kept
 * them (r ≤ `SIMILARITY_FUSED_TOP_R`), else read off the similarity columns.
 */
async function dispatchNearest(encoder: ChunkEncoder, side: MembershipSide, clusters: number, sims: Buffer, nearest?: Buffer): Promise<void> {
  const [x, y] = dispatchGrid(Math.ceil((side.slots * side.count) / SIM_TOP_THREADS));
  const params = encoder.uniform(SIMILARITY_PARAMS, { ...similarityValues(encoder, side, clusters), tilesX: x }, []);
  if (nearest) encoder.dispatch(await encoder.pipeline(nearestBitsWgsl(side.r)), [params, nearest, side.bits], x, y);
  else encoder.dispatch(await encoder.pipeline(simTopWgsl(side.r)), [params, sims, side.bits], x, y);
}

/** Dispatches one routing selection kernel with the call's parameters (`perWorkgroup`: one workgroup per thread count). */
function routingRunner(encoder: ChunkEncoder, base: Readonly<Record<string, number>>) {
  const { chunk, index } = encoder;
  return async (code: string, list: readonly Buffer[], threads: number, values: Readonly<Record<string, number>>, perWorkgroup = false): Promise<void> => {
    const [x, y] = dispatchGrid(perWorkgroup ? threads : Math.ceil(threads / ROUTING_THREADS));
    const params = encoder.uniform(ROUTING_PARAMS, { ...base, slotBase: chunk.slot0, chunkIndex: index, ...values, tilesX: x }, []);
    encoder.dispatch(await encoder.pipeline(code), [params, ...list], x, y);
  };
}

/** Options of {@link runRouting}. */
export interface RoutingRunOptions {
  /**
   * `rows` (default): the CSR token selection, then the backend's exact sparse executor (the
   * selection is returned); `clusters`: the cluster-major executor (`gpu-routing-clusters.ts`),
   * no selection materialised.
   */
  readonly executor?: 'rows' | 'clusters';
  /** KV slot of the chunks' q, k, v, out, lse buffers where this call's slots start (needs fitted centroids). */
  readonly slotOffset?: number;
  /** The call's plan when the caller has it already (`routingPlan(resident.dims, config)`: host work of O(slots · sample)). */
  readonly plan?: RoutingPlan;
  /** Read back the pairs the cluster executor's kernels counted (default true; false: `pairs` is 0). */
  readonly countPairs?: boolean;
}

/**
 * Runs `routing` on a resident call from the given k-means++ seeding (`[batch·kvHeads][C][D]`, the
 * CPU's), with the seeding on the GPU (`'gpu'`, the CPU's draws in f32), or from centroids fitted
 * already (`{ centroids }`: a call-wide `[batch·kvHeads][C][D]` buffer, see
 * {@link fitRoutingCentroids}); the output lands in the chunks' `out`/`lse`. The caller frees
 * `selection` with `backend.releaseSelection`.
 */
export async function runRouting(
  backend: GpuBackend,
  resident: ResidentAttention,
  config: RoutingConfig,
  seeding: Float32Array | 'gpu' | { readonly centroids: Buffer },
  pool?: GpuBufferPool,
  options: RoutingRunOptions = {},
): Promise<RoutingRun> {
  const d = resident.dims;
  const plan = options.plan ?? routingPlan(d, config);
  const C = plan.clusters;
  const device = backend.context.device;
  const owned: Buffer[] = [];
  let made = 0;
  const make = (bytes: number) => {
    if (pool) return pool.take(`run:${made++}`, bytes);
    const buffer = device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 4) * 4), usage: STORAGE | COPY_SRC | COPY_DST });
    owned.push(buffer);
    return buffer;
  };
  try {
    const fitted = typeof seeding === 'object' && !(seeding instanceof Float32Array);
    const { executor = 'rows', slotOffset = 0 } = options;
    if (slotOffset > 0 && !fitted) throw new Error('runRouting: a slot offset needs fitted centroids');
    const centroids = fitted ? seeding.centroids : make(4 * d.batch * d.kvHeads * C * d.headDim);
    const picked = make(fitted ? 4 : plan.picked.byteLength);
    if (seeding instanceof Float32Array) device.queue.writeBuffer(centroids, 0, seeding);
    if (!fitted) device.queue.writeBuffer(picked, 0, plan.picked);
    let draws: { index: Buffer; value: Buffer } | undefined;
    if (seeding === 'gpu') {
      draws = { index: make(plan.drawIndex.byteLength), value: make(plan.drawValue.byteLength) };
      device.queue.writeBuffer(draws.index, 0, plan.drawIndex);
      device.queue.writeBuffer(draws.value, 0, plan.drawValue);
    }
    // Per chunk, the membership bits both executors read (the cluster executor's key bits are a
    // region of its lookup buffer).
    const clusterKept = executor === 'clusters' ? resident.chunks.map((chunk) => clusterMembership(make, d, plan, chunk.slots)) : undefined;
    const kept: readonly MembershipBits[] =
      clusterKept ??
      resident.chunks.map((chunk) => ({
        keyBits: make(4 * chunk.slots * C * Math.ceil(d.keySeq / 32)),
        queryColumnBits: make(4 * chunk.slots * d.groupSize * C * Math.ceil(d.querySeq / 32)),
      }));
    const base = {
      clusters: C,
      groupSize: d.groupSize,
      keySeq: d.keySeq,
      querySeq: d.querySeq,
      queryOffset: d.queryOffset,
      causal: d.causal ? 1 : 0,
      sinkTokens: config.sinkTokens,
      localMode: config.local === 'always' ? 1 : config.local === 'uncovered' ? 2 : 0,
      localWindow: config.localWindow,
      capacity: plan.listCapacity,
    };
    // Membership (with the k-means first unless the centroids come fitted): key and query
    // similarities (tiled) and their top-r clusters, balanced top-w and nearest bits.
    const membershipMs = await backend.runKernels(resident, async (plain) => {
      const encoder = pooledEncoder(plain, fitted ? pool : undefined, 'membership');
      const { chunk, index } = encoder;
      const b = kept[index]!;
      const querySlots = chunk.slots * d.groupSize;
      // The k-means unless the centroids come fitted; each row's (shift, scale), applied by the
      // similarity tile to the raw rows; top-r clusters come from the similarities below.
      if (!fitted) await encodeRoutingCentroids(encoder, plan, { centroids, picked, ...(draws ? { draws } : {}) });
      const affine = await encodeRoutingNormalize(encoder, plan, slotOffset, 'affine');
      const run = routingRunner(encoder, base);
      // Key slots lie the chunk's keyStride rows apart (a KV cache's capacity), query slots querySeq.
      const keyStride = chunkKeyStride(chunk, d);
      const sides = [
        { rows: chunk.k, rowBase: slotOffset * keyStride, rowStride: keyStride, affine: affine.keys, bits: b.keyBits, slots: chunk.slots, count: d.keySeq, groupSize: 1, window: plan.window, r: plan.keyClusters },
        { rows: chunk.q, rowBase: slotOffset * d.groupSize * d.querySeq, rowStride: d.querySeq, affine: affine.queries, bits: b.queryColumnBits, slots: querySlots, count: d.querySeq, groupSize: d.groupSize, window: plan.queryWindow, r: plan.queryClusters },
      ];
      // One side's similarity columns at a time, and each 64-row block's largest similarity key
      // per cluster (the similarity tile writes them, the top-w skips by them).
      const sims = encoder.scratch(4 * Math.max(...sides.map((side) => side.slots * C * side.count)));
      const blockKeys = encoder.scratch(4 * Math.max(...sides.map((side) => side.slots * C * Math.ceil(side.count / SIMILARITY_BLOCK))));
      // Each row's top-r centroids kept by the similarity tile where r is small (the defaults).
      const fused = sides.filter((side) => side.r > 0 && side.r <= SIMILARITY_FUSED_TOP_R);
      const nearest = fused.length > 0 ? encoder.scratch(4 * Math.max(...fused.map((side) => side.slots * side.count * side.r))) : undefined;
      for (const side of sides) {
        const values = { slots: side.slots, count: side.count, groupSize: side.groupSize, window: side.window, r: side.r };
        const rowTop = fused.includes(side) ? nearest : undefined;
        await dispatchSimilarities(encoder, side, centroids, C, sims, blockKeys, plan.normalization === 'l2' ? 0 : 1, rowTop);
        await run(balancedTopWWgsl(), [sims, blockKeys, side.bits], side.slots * C, values, true);
        if (side.r > 0) await dispatchNearest(encoder, side, C, sims, rowTop);
      }
    });
    if (clusterKept) {
      const run = await runClusterExecutor(backend, resident, config, plan, clusterKept, make, slotOffset, options.countPairs ?? true);
      return {
        selectionMs: membershipMs + run.listMs,
        attentionMs: run.attentionMs,
        phases: { membershipMs, selectionMs: run.listMs },
        plan,
        pairs: run.pairs,
      };
    }
    // Per chunk, what the rows executor's passes add: flag bits, cluster lists, row offsets.
    const totals = make(4 * resident.chunks.length);
    const rowBuffers = resident.chunks.map((chunk, i) => {
      const querySlots = chunk.slots * d.groupSize;
      return {
        ...kept[i]!,
        queryBits: make(4 * querySlots * d.querySeq * Math.ceil(C / 32)),
        lists: make(4 * chunk.slots * plan.listCapacity),
        listOffsets: make(4 * chunk.slots * (C + 1)),
        rowOffsets: make(4 * querySlots * d.querySeq),
        headBase: make(4 * querySlots),
      };
    });
    // Selection: cluster key lists, row sizes, row offsets and the chunk totals.
    const countMs = await backend.runKernels(resident, async (plain) => {
      const encoder = pooledEncoder(plain, pool, 'count');
      const { chunk, index } = encoder;
      const b = rowBuffers[index]!;
      const querySlots = chunk.slots * d.groupSize;
      const run = routingRunner(encoder, base);
      const keyValues = { slots: chunk.slots, count: d.keySeq };
      await run(packRowFlagsWgsl(), [b.queryColumnBits, b.queryBits], querySlots * Math.ceil(C / 32) * d.querySeq, { slots: querySlots, count: d.querySeq });
      const counts = encoder.scratch(4 * chunk.slots * C);
      await run(clusterCountWgsl(), [b.keyBits, counts], chunk.slots * C, keyValues, true);
      await run(clusterOffsetsWgsl(), [counts, b.listOffsets], chunk.slots, keyValues);
      await run(clusterListWgsl(), [b.keyBits, b.listOffsets, b.lists], chunk.slots * C, keyValues, true);
      const sizes = encoder.scratch(4 * querySlots * d.querySeq);
      const headTotals = encoder.scratch(4 * querySlots);
      const queryValues = { slots: querySlots };
      await run(routedRowsWgsl(false), [b.queryBits, b.keyBits, b.lists, b.listOffsets, sizes], querySlots * d.querySeq, queryValues);
      await run(rowScanWgsl(), [sizes, b.rowOffsets, headTotals], querySlots, queryValues, true);
      await run(headScanWgsl(), [headTotals, b.headBase, totals], 1, queryValues);
    });
    const chunkTotals = new Uint32Array((await backend.read(totals, 4 * resident.chunks.length)).buffer, 0, resident.chunks.length);
    let stride = 1;
    resident.chunks.forEach((chunk, i) => {
      const rows = chunk.slots * d.groupSize * d.querySeq;
      stride = Math.max(stride, Math.ceil(chunkTotals[i]! / rows));
      if (4 * rows * stride > backend.context.maxBinding) {
        throw new ConfigError(`routing: the selection of KV slots ${chunk.slot0}..${chunk.slot0 + chunk.slots - 1} holds ${chunkTotals[i]} pairs, above the device's largest buffer binding (${backend.context.maxBinding} bytes); use more clusters`);
      }
    });
    const { selection, ms: writeMs } = await backend.runSelection(resident, {
      layout: { kind: 'token', blockSize: 1, headScope: 'query', rows: d.querySeq, queryBlockSize: 1 },
      stride,
      async encodeChunk(encoder) {
        const { chunk, index, target } = encoder;
        const b = rowBuffers[index]!;
        const querySlots = chunk.slots * d.groupSize;
        const [x, y] = dispatchGrid(Math.ceil((querySlots * d.querySeq) / ROUTING_THREADS));
        const params = encoder.uniform(ROUTING_PARAMS, { ...base, slots: querySlots, slotBase: chunk.slot0, tilesX: x }, []);
        encoder.dispatch(await encoder.pipeline(routedRowsWgsl(true)), [params, b.queryBits, b.keyBits, b.lists, b.listOffsets, b.rowOffsets, b.headBase, target.bounds, target.indices], x, y);
      },
    });
    try {
      const attentionMs = await backend.runSparse(resident, selection);
      return {
        selection,
        selectionMs: membershipMs + countMs + writeMs,
        attentionMs,
        phases: { membershipMs, selectionMs: countMs + writeMs },
        plan,
        pairs: chunkTotals.reduce((a, b) => a + b, 0),
      };
    } catch (error) {
      backend.releaseSelection(selection);
      throw error;
    }
  } finally {
    backend.discard(...owned);
  }
}

/** Sorts every row of a selection read back from the GPU (rows come in cluster order). */
export function sortSelectionRows(selection: Selection): Selection {
  for (let r = 0; r + 1 < selection.offsets.length; r++) selection.indices.subarray(selection.offsets[r]!, selection.offsets[r + 1]!).sort();
  return selection;
}

/** `routing` prefill on the GPU: the CPU's seeding, {@link runRouting}, readback of output, lse and selection. */
export async function gpuRoutingAttention(backend: GpuBackend, input: AttentionInput, config: RoutingConfig): Promise<SparseAttentionResult> {
  const d = validateAttentionInput(input);
  const plan = routingPlan(d, config);
  const seeding = seedCentroids(input, d, config, plan.clusters);
  const resident = backend.upload(input, d, routingScratchBytesPerSlot(d, plan));
  try {
    const run = await runRouting(backend, resident, config, seeding);
    const rows = run.selection;
    if (!rows) throw new Error('runRouting: the rows executor returns its selection');
    let selection: Selection;
    try {
      selection = sortSelectionRows(await backend.readSelection(rows));
    } finally {
      backend.releaseSelection(rows);
    }
    const { output, lse } = await backend.readOutput(resident);
    const pairs = countPairs(selection, d);
    return {
      output,
      lse,
      selection,
      stats: sparseStats(d, pairs, false, run.selectionMs, run.attentionMs),
      backend: backend.info,
      diagnostics: { clusters: plan.clusters, window: plan.window, keysPerQuery: pairs / (d.batch * d.queryHeads * d.querySeq) },
    };
  } finally {
    backend.release(resident);
  }
}

/**
 * `routing` on the GPU: same id and config schema as the CPU method; `combine: 'union'` with
 * separate queries and keys (the defaults). `sharedQK` and `combine: 'mean'` throw a
 * `ConfigError` at `create` (they stay on the CPU method). Decode stays on the CPU.
 */
export const gpuRoutingMethod: GpuMethodDefinition = {
  id: routingMethod.id,
  family: routingMethod.family,
  cpu: routingMethod,
  create: (backend, config): GpuAttentionMethod => {
    const resolved = parseConfig(routingMethod.id, routingConfigSchema, config);
    if (resolved.sharedQK) throw new ConfigError('routing: sharedQK is not on the GPU path (the GPU routes separate queries and keys only)');
    if (resolved.combine !== 'union') throw new ConfigError("routing: combine 'mean' is not on the GPU path (the GPU runs the union)");
    // The plan of the last shape run (its subsample and seeding draws depend on the shape and
    // the config's seed only): repeated calls of one shape skip that host work.
    let last: { readonly key: string; readonly plan: RoutingPlan } | undefined;
    const planFor = (d: AttentionDims) => {
      const key = [d.batch, d.kvHeads, d.groupSize, d.keySeq, d.querySeq, d.headDim].join(',');
      if (last?.key !== key) last = { key, plan: routingPlan(d, resolved) };
      return last.plan;
    };
    return {
      methodId: routingMethod.id,
      prefill: (input) => gpuRoutingAttention(backend, input, resolved),
      runResident: (resident, options) => residentCall(backend, options, () => runRoutingResident(backend, resident, resolved, { plan: planFor(resident.dims), density: options?.density ?? true })),
    };
  },
};

/**
 * The CPU's k-means++ seeding for a resident call: the normalised subsample rows are gathered on
 * the GPU and read back (`sample × headDim` floats per KV slot, not the keys), then seeded on the
 * CPU with the same draws as `sphericalKMeans` (the rows sit at their positions in a zero-filled
 * key array, so its seeded subsample picks exactly them).
 */
export async function seedFromResident(backend: GpuBackend, resident: ResidentAttention, config: RoutingConfig, plan: RoutingFitPlan = routingFitPlan(resident.dims, config)): Promise<Float32Array> {
  const d = resident.dims;
  const { clusters, sample: n } = plan;
  const D = d.headDim;
  const device = backend.context.device;
  const picked = device.createBuffer({ size: Math.max(16, plan.picked.byteLength), usage: STORAGE | COPY_DST });
  device.queue.writeBuffer(picked, 0, plan.picked);
  const samples = resident.chunks.map((chunk) => device.createBuffer({ size: Math.max(16, 4 * chunk.slots * n * D), usage: STORAGE | COPY_SRC }));
  try {
    await backend.runKernels(resident, async (encoder) => {
      await encodeRoutingSample(encoder, plan, picked, samples[encoder.index]!);
    });
    const out = new Float32Array(d.batch * d.kvHeads * clusters * D);
    const keys = new Float32Array(d.keySeq * D);
    const sampled = await backend.readAll(resident.chunks.map((chunk, i) => ({ buffer: samples[i]!, bytes: 4 * chunk.slots * n * D })));
    for (const [i, chunk] of resident.chunks.entries()) {
      const rows = sampled[i]!;
      for (let s = 0; s < chunk.slots; s++) {
        const slot = chunk.slot0 + s;
        keys.fill(0);
        for (let r = 0; r < n; r++) keys.set(rows.subarray((s * n + r) * D, (s * n + r + 1) * D), plan.picked[slot * n + r]! * D);
        const fit = sphericalKMeans(keys, d.keySeq, D, { clusters, iterations: 0, seed: headSeed(config.seed, slot), sampleSize: resolveSampleSize(config.kmeansSampleSize, clusters) });
        out.set(fit.centroids, slot * clusters * D);
      }
    }
    return out;
  } finally {
    picked.destroy();
    for (const b of samples) b.destroy();
  }
}

/**
 * Fits the routing k-means of every KV slot of a resident call in one pass (subsample gather,
 * k-means++ seeding on the GPU with the CPU's draws, or from a given seeding such as
 * {@link seedFromResident}'s, then the Lloyd iterations), into a new call-wide `[batch·kvHeads][C][D]`
 * buffer the caller destroys. All slots' fits run side by side (one workgroup per slot for the
 * seeding, every slot's rows for the tiled assignment), instead of one group of slots after
 * another. Scratch per KV slot: `4·(2·sample·D + 2·sample + C·D + C)` bytes (see
 * `encodeRoutingCentroids`); nothing of size S. With a `pool` the scratch comes from it (kept for
 * the next call: at 64k on the H100 the fit took 30 ms allocating its 128 MiB of subsamples per
 * call and 22 ms with every buffer kept).
 */
export async function fitRoutingCentroids(
  backend: GpuBackend,
  resident: ResidentAttention,
  config: RoutingConfig,
  seeding: Float32Array | 'gpu' = 'gpu',
  pool?: GpuBufferPool,
  plan: RoutingFitPlan = routingFitPlan(resident.dims, config),
): Promise<{ readonly centroids: Buffer; readonly ms: number }> {
  const d = resident.dims;
  const device = backend.context.device;
  const make = (bytes: number) => device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 4) * 4), usage: STORAGE | COPY_SRC | COPY_DST });
  const centroids = make(4 * d.batch * d.kvHeads * plan.clusters * d.headDim);
  const picked = make(plan.picked.byteLength);
  const draws = seeding === 'gpu' ? { index: make(plan.drawIndex.byteLength), value: make(plan.drawValue.byteLength) } : undefined;
  try {
    device.queue.writeBuffer(picked, 0, plan.picked);
    if (draws) {
      device.queue.writeBuffer(draws.index, 0, plan.drawIndex);
      device.queue.writeBuffer(draws.value, 0, plan.drawValue);
    } else {
      device.queue.writeBuffer(centroids, 0, seeding as Float32Array);
    }
    const ms = await backend.runKernels(resident, async (encoder) => {
      await encodeRoutingCentroids(pooledEncoder(encoder, pool, 'fit'), plan, { centroids, picked, ...(draws ? { draws } : {}) });
    });
    return { centroids, ms };
  } catch (error) {
    centroids.destroy();
    throw error;
  } finally {
    // Freed once the recorded work has run (inside `backend.oneSubmission`, after its submission).
    backend.discard(picked, ...(draws ? [draws.index, draws.value] : []));
  }
}

/** Options of {@link runRoutingResident}. */
export interface RoutingResidentOptions {
  /** KV slots per group (default {@link routingSlotsPerGroup}). */
  readonly slotsPerGroup?: number;
  /** Where the k-means++ seeding runs (default `'gpu'`). */
  readonly seeding?: 'gpu' | 'cpu';
  /** The call's {@link routingPlan}, when the caller keeps it per shape. */
  readonly plan?: RoutingPlan;
  /** Read back the attended pairs for the density (default true). */
  readonly density?: boolean;
}

/** What {@link runRoutingResident} resolves with (`density` unless `density: false` was asked). */
export interface RoutingResidentRun {
  readonly selectionMs: number;
  readonly attentionMs: number;
  readonly density?: number;
  readonly phases: RoutingPhases;
}

/** Milliseconds of each phase of {@link runRoutingResident} (summed over the KV-slot groups); a type alias so it is a `phases` record of `runResident`. */
export type RoutingPhases = {
  /** Subsample gather, k-means++ seeding and Lloyd iterations of every KV slot, and the host's plan (subsample and draws; the seeding too with `seeding: 'cpu'`). */
  readonly kmeansMs: number;
  /** Normalisation, key and query similarities to the centroids, balanced top-w and nearest bits. */
  readonly membershipMs: number;
  /** The clusters' key and query lists and the attention tiles' map (the cluster executor's selection). */
  readonly selectionMs: number;
};

/**
 * KV slots routed together by {@link runRoutingResident}: as many as fit one binding with their
 * largest per-group buffers, the similarity / flag columns (`routingScratchBytesPerSlot`) and
 * the cluster executor's partials (`clusterPartialBytesPerQuerySlot` per query head).
 */
export function routingSlotsPerGroup(backend: GpuBackend, d: AttentionDims, config: RoutingConfig, plan: RoutingPlan = routingPlan(d, config)): number {
  const byScratch = Math.floor(backend.context.maxBinding / routingScratchBytesPerSlot(d, plan));
  const byPartials = Math.floor(backend.context.maxBinding / (d.groupSize * clusterPartialBytesPerQuerySlot(d, plan)));
  return Math.max(1, Math.min(byScratch, byPartials));
}

/**
 * `routing` on a resident call of any size: the k-means of every KV slot at once
 * ({@link fitRoutingCentroids}), then membership and the cluster-major executor
 * (`gpu-routing-clusters.ts`) KV-slot group by group, each group working on its slots of the
 * chunk's own buffers (a slot offset in the kernels, no copies); every group's buffers come from
 * one `GpuBufferPool`, kept by the backend for the next call (`backend.borrowPool`; freed by
 * `backend.releaseScratch()`). `slotsPerGroup` defaults to {@link routingSlotsPerGroup}. The
 * k-means++ seeding runs on the GPU (`seeding: 'cpu'`: on the host from the read-back subsample,
 * {@link seedFromResident}). `plan`: the call's {@link routingPlan} when the caller keeps it per
 * shape (the GPU method does). Resolves with the summed selection time (k-means with the host's
 * plan, membership, lists),
 * attention time, the density (the pairs the attention kernels counted) and `phases`, the
 * selection time split by phase ({@link RoutingPhases}; `selectionMs` is their sum).
 */
export async function runRoutingResident(
  backend: GpuBackend,
  resident: ResidentAttention,
  config: RoutingConfig,
  options?: RoutingResidentOptions & { readonly density?: true },
): Promise<RoutingResidentRun & { density: number }>;
export async function runRoutingResident(backend: GpuBackend, resident: ResidentAttention, config: RoutingConfig, options: RoutingResidentOptions): Promise<RoutingResidentRun>;
export async function runRoutingResident(
  backend: GpuBackend,
  resident: ResidentAttention,
  config: RoutingConfig,
  options: RoutingResidentOptions = {},
): Promise<RoutingResidentRun> {
  const d = resident.dims;
  const started = performance.now();
  // The host's part: the plan (every slot's subsample and seeding draws, O(slots · sample); made
  // once for the fit and every group, unless the caller kept it for this shape), and the seeding
  // itself with `seeding: 'cpu'`.
  const plan = options.plan ?? routingPlan(d, config);
  const seeding = options.seeding === 'cpu' ? await seedFromResident(backend, resident, config, plan) : 'gpu';
  const hostMs = performance.now() - started;
  // The pool stays with the backend for the next call (freed by backend.releaseScratch()).
  const pool = backend.borrowPool(routingMethod.id);
  let fit: Awaited<ReturnType<typeof fitRoutingCentroids>>;
  try {
    fit = await fitRoutingCentroids(backend, resident, config, seeding, pool, plan);
  } catch (error) {
    backend.returnPool(routingMethod.id, pool);
    throw error;
  }
  const kmeansMs = hostMs + fit.ms;
  let membershipMs = 0;
  let listMs = 0;
  let attentionMs = 0;
  let pairs = 0;
  const perGroup = options.slotsPerGroup ?? routingSlotsPerGroup(backend, d, config, plan);
  try {
    for (const chunk of resident.chunks) {
      for (let first = 0; first < chunk.slots; first += perGroup) {
        const slots = Math.min(perGroup, chunk.slots - first);
        const part = { ...chunk, slot0: chunk.slot0 + first, slots };
        const run = await runRouting(backend, { dims: d, chunks: [part] }, config, { centroids: fit.centroids }, pool, { executor: 'clusters', slotOffset: first, plan, countPairs: options.density !== false });
        membershipMs += run.phases.membershipMs;
        listMs += run.phases.selectionMs;
        attentionMs += run.attentionMs;
        pairs += run.pairs;
      }
    }
  } finally {
    backend.discard(fit.centroids);
    backend.returnPool(routingMethod.id, pool);
  }
  const phases = { kmeansMs, membershipMs, selectionMs: listMs };
  const timings = { selectionMs: kmeansMs + membershipMs + listMs, attentionMs, phases };
  return options.density === false ? timings : { ...timings, density: pairs / densePairCount(d) };
}
