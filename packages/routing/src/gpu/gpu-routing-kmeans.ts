/**
 * The `routing` method's k-means and nearest-centroid membership on the GPU (spec routing.md §3–4):
 * normalisation of keys and queries, the seeded subsample (gathered and normalised in one pass),
 * the k-means++ seeding (on the GPU with the CPU's draws, or the CPU's seeding uploaded), every
 * Lloyd iteration (tiled nearest-centroid assignment, centroid update), and each key's
 * top-`keyClusters` / each query's top-`queryClusters` centroids (for the checks). The balanced
 * top-w membership, the union selection and attention are in `gpu-routing.ts`.
 *
 * Work per KV slot (n = sample, C clusters, D = headDim): gather n·D; seeding C sequential steps of
 * n·D multiply-adds (one workgroup per slot, all slots side by side); per Lloyd iteration n·C·D
 * multiply-adds (64 rows × 16 centroids per workgroup tile) plus C·D sums over n assignments.
 */
import { ConfigError, Rng, rowOffset, validateAttentionInput, type AttentionDims, type AttentionInput } from '@sparse-attn/core';
import { chunkKeyStride, dispatchGrid, type ChunkEncoder, type GpuBackend, WEBGPU_FLAGS } from '@sparse-attn/backend-gpu';
import { headSeed } from '../balanced-routing-attention.js';
import { normalizeRows } from '../normalize-rows.js';
import { resolveClusters, resolveSampleSize, type RoutingConfig } from '../routing-config.js';
import { sphericalKMeans } from '../spherical-kmeans.js';
import { SEED_PARAMS, SEED_THREADS, seedStepWgsl } from './kmeans-seed-wgsl.js';
import { KMEANS_PARAMS, KMEANS_THREADS, kmeansGatherWgsl, kmeansNormalizeWgsl, kmeansSumWgsl, NORMALIZE_MAX_DIM, NORMALIZE_MAX_WORKGROUP_BYTES, normalizeRowsPerWorkgroup, normalizeRowsWgsl, normalizeRowsWorkgroupBytes, ROW_AFFINE_ROWS, rowAffineWgsl } from './spherical-kmeans-wgsl.js';
import { CENTROID_TILE_PARAMS, CENTROID_TILE_THREADS, centroidTileWgsl, type CentroidTileMode } from './centroid-tile-wgsl.js';

const { STORAGE, COPY_SRC, COPY_DST } = WEBGPU_FLAGS;

/**
 * The rows the CPU's `sphericalKMeans` fits on for `count` rows: all of them when `count ≤
 * sampleSize`, else the first `sampleSize` entries of its seeded partial Fisher–Yates permutation,
 * sorted (the same `Rng` draws, in the same order, as the CPU). Given an `Rng` instead of a seed,
 * leaves it where the CPU's is when its seeding draws begin.
 */
export function kmeansSampleIndices(count: number, sampleSize: number, seed: number | Rng): Uint32Array {
  const rng = typeof seed === 'number' ? new Rng(seed) : seed;
  const n = Math.min(count, sampleSize);
  if (n === count) return Uint32Array.from({ length: count }, (_, i) => i);
  // The permutation's moved entries only (position → row, open addressing; −1 = no entry):
  // O(n) where the CPU fills all `count` (a Map took ~0.3 ms per slot of 4096 draws).
  const size = 1 << Math.ceil(Math.log2(4 * n));
  const mask = size - 1;
  const keys = new Int32Array(size).fill(-1);
  const rows = new Int32Array(size);
  const find = (position: number) => {
    let at = (Math.imul(position, 0x9e3779b1) >>> 0) & mask;
    while (keys[at] !== -1 && keys[at] !== position) at = (at + 1) & mask;
    return at;
  };
  const picked = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    const j = i + rng.int(count - i);
    const atJ = find(j);
    const atI = find(i);
    picked[i] = keys[atJ] === j ? rows[atJ]! : j;
    const rowI = keys[atI] === i ? rows[atI]! : i;
    keys[atJ] = j;
    rows[atJ] = rowI;
  }
  return picked.sort();
}

/**
 * The draws the CPU's k-means++ seeding makes after its subsample: one `Rng.next()` per centroid
 * (used as ⌊u·n⌋ for the first pick and when every distance is 0, else as the fraction u of the
 * summed squared distances), from `rng` where the subsample's draws left it.
 */
function seedingDraws(rng: Rng, sample: number, clusters: number): { index: Uint32Array; value: Float32Array } {
  const index = new Uint32Array(clusters);
  const value = new Float32Array(clusters);
  for (let c = 0; c < clusters; c++) {
    const u = rng.next();
    index[c] = Math.floor(u * sample);
    value[c] = u;
  }
  return { index, value };
}

/** What {@link fitRoutingGpu} read back: per routing head (batch · KV head) and per token. */
export interface GpuRoutingFit {
  readonly clusters: number;
  /** Rows each head's k-means fitted on. */
  readonly sampleCount: number;
  /** `[batch·kvHeads][clusters][headDim]` unit centroids after the Lloyd iterations. */
  readonly centroids: Float32Array;
  /** `[batch·kvHeads][keySeq][rk]`: each key's top-rk centroids, most similar first (rk = min(keyClusters, C)). */
  readonly keyTop: Uint32Array;
  readonly keyClusters: number;
  /** `[batch·queryHeads][querySeq][rq]`: each query's top-rq centroids of its KV head (rq = min(queryClusters, C)). */
  readonly queryTop: Uint32Array;
  readonly queryClusters: number;
}

/** The CPU's k-means++ seeding of each routing head (Lloyd iterations 0), `[slot][clusters][dim]`. */
export function seedCentroids(input: AttentionInput, d: AttentionDims, config: RoutingConfig, clusters: number): Float32Array {
  const out = new Float32Array(d.batch * d.kvHeads * clusters * d.headDim);
  const keys = new Float32Array(d.keySeq * d.headDim);
  for (let slot = 0; slot < d.batch * d.kvHeads; slot++) {
    normalizeRows(input.k.data, rowOffset(d.kDims, Math.floor(slot / d.kvHeads), slot % d.kvHeads, 0), keys, 0, d.keySeq, d.headDim, config.normalization);
    const fit = sphericalKMeans(keys, d.keySeq, d.headDim, { clusters, iterations: 0, seed: headSeed(config.seed, slot), sampleSize: resolveSampleSize(config.kmeansSampleSize, clusters) });
    out.set(fit.centroids, slot * clusters * d.headDim);
  }
  return out;
}

/** Sizes of a routing call's k-means, shared by its kernels and the CPU checks. */
export interface RoutingFitPlan {
  readonly clusters: number;
  /** Rows each head's k-means fits on. */
  readonly sample: number;
  /** Seeded subsample row indices, `[batch·kvHeads][sample]`. */
  readonly picked: Uint32Array;
  readonly iterations: number;
  readonly normalization: RoutingConfig['normalization'];
  /** The seeding's draws per head, `[batch·kvHeads][clusters]`: ⌊u·sample⌋ and u (see `seedStepWgsl`). */
  readonly drawIndex: Uint32Array;
  readonly drawValue: Float32Array;
}

/** The k-means plan of a call (the CPU's C, subsample and seeds). */
export function routingFitPlan(d: AttentionDims, config: RoutingConfig): RoutingFitPlan {
  if (config.sharedQK) throw new ConfigError('routing: sharedQK is not on the GPU path (the GPU routes separate queries and keys only)');
  if (normalizeRowsWorkgroupBytes(d.headDim) > NORMALIZE_MAX_WORKGROUP_BYTES) {
    throw new ConfigError(`routing: headDim ${d.headDim} is above the GPU path's ${NORMALIZE_MAX_DIM} (the normalisation stages a whole row in WebGPU's minimum 16 KiB of workgroup memory)`);
  }
  const clusters = resolveClusters(config.clusters, d.keySeq, config.window);
  const sampleSize = resolveSampleSize(config.kmeansSampleSize, clusters);
  const sample = Math.min(d.keySeq, sampleSize);
  const slots = d.batch * d.kvHeads;
  const picked = new Uint32Array(slots * sample);
  const drawIndex = new Uint32Array(slots * clusters);
  const drawValue = new Float32Array(slots * clusters);
  for (let s = 0; s < slots; s++) {
    const rng = new Rng(headSeed(config.seed, s));
    picked.set(kmeansSampleIndices(d.keySeq, sampleSize, rng), s * sample);
    const draws = seedingDraws(rng, sample, clusters);
    drawIndex.set(draws.index, s * clusters);
    drawValue.set(draws.value, s * clusters);
  }
  return { clusters, sample, picked, iterations: config.kmeansIterations, normalization: config.normalization, drawIndex, drawValue };
}

/** Dispatches one k-means-family kernel over `threads` threads with the chunk's parameters. */
type Run = (code: string, buffers: readonly GPUBufferLike[], threads: number, values: Readonly<Record<string, number>>) => Promise<void>;
type GPUBufferLike = ReturnType<ChunkEncoder['scratch']>;

function kmeansRunner(encoder: ChunkEncoder, plan: RoutingFitPlan): Run {
  return async (code, list, threads, values) => {
    const [x, y] = dispatchGrid(Math.ceil(threads / KMEANS_THREADS));
    const params = encoder.uniform(KMEANS_PARAMS, { dim: encoder.dims.headDim, clusters: plan.clusters, sample: plan.sample, slotBase: encoder.chunk.slot0, ...values, tilesX: x }, []);
    encoder.dispatch(await encoder.pipeline(code), [params, ...list], x, y);
  };
}

/**
 * Dispatches the tiled rows × centroids kernel (`centroidTileWgsl`) over `slots` slots of `count`
 * rows each: rows channel-major `[slot][D][count]`, centroids of slot `chunk.slot0 + ⌊slot / groupSize⌋`, then
 * the mode's outputs.
 */
export async function dispatchCentroidTile(
  encoder: ChunkEncoder,
  mode: CentroidTileMode,
  r: number,
  buffers: readonly GPUBufferLike[],
  shape: { readonly slots: number; readonly count: number; readonly clusters: number; readonly groupSize: number; readonly rowBase?: number; readonly iteration?: number; readonly flagStride?: number },
): Promise<void> {
  const blocks = Math.ceil(shape.count / CENTROID_TILE_THREADS);
  const [x, y] = dispatchGrid(shape.slots * blocks);
  const params = encoder.uniform(
    CENTROID_TILE_PARAMS,
    { slots: shape.slots, count: shape.count, clusters: shape.clusters, slotBase: encoder.chunk.slot0, groupSize: shape.groupSize, rowBase: shape.rowBase ?? 0, blocks, tilesX: x, iteration: shape.iteration ?? 0, flagStride: shape.flagStride ?? 0 },
    [],
  );
  encoder.dispatch(await encoder.pipeline(centroidTileWgsl(encoder.dims.headDim, mode, r)), [params, ...buffers], x, y);
}

/**
 * Records, for one chunk: the subsample gathered from the raw keys (normalised and renormalised in
 * one pass), the k-means++ seeding when `draws` are given (else `centroids` holds the CPU's seeding
 * on entry), and every Lloyd iteration on the call-wide `centroids` (`[slot][C][D]`). Scratch per KV
 * slot: the subsample twice (row- and channel-major) plus its distances and assignment, C·D sums
 * and C counts, `4·(2·sample·D + 2·sample + C·D + C)` bytes; nothing of size S.
 */
export async function encodeRoutingCentroids(
  encoder: ChunkEncoder,
  plan: RoutingFitPlan,
  buffers: { readonly centroids: GPUBufferLike; readonly picked: GPUBufferLike; readonly draws?: { readonly index: GPUBufferLike; readonly value: GPUBufferLike } },
): Promise<void> {
  const { chunk, dims: d } = encoder;
  const D = d.headDim;
  const { clusters, sample: n } = plan;
  const run = kmeansRunner(encoder, plan);
  const sampleRows = encoder.scratch(4 * chunk.slots * n * D);
  const sampleColumns = encoder.scratch(4 * chunk.slots * n * D);
  const common = { slots: chunk.slots, count: d.keySeq };
  await encodeGather(encoder, plan, buffers.picked, sampleRows, sampleColumns);
  const draws = buffers.draws;
  if (draws) {
    // k-means++ seeding on the GPU with the CPU's draws (else `centroids` holds the CPU's seeding):
    // C steps, alternating two bind groups over double-buffered distances and step counters (both
    // counters start at 0; step c reads one and writes c + 1 to the other).
    const distances = [encoder.scratch(4 * chunk.slots * n), encoder.scratch(4 * chunk.slots * n)] as const;
    const steps = [encoder.scratch(16), encoder.scratch(16)] as const;
    const [x, y] = dispatchGrid(chunk.slots * Math.ceil(n / SEED_THREADS));
    const params = encoder.uniform(SEED_PARAMS, { slots: chunk.slots, sample: n, clusters, slotBase: chunk.slot0, tilesX: x }, []);
    const step = await encoder.pipeline(seedStepWgsl(D));
    const groups = [0, 1].map((a) =>
      encoder.bind(step, [params, sampleColumns, draws.index, draws.value, distances[a]!, distances[1 - a]!, buffers.centroids, steps[a]!, steps[1 - a]!]),
    );
    encoder.pass.setPipeline(step);
    for (let c = 0; c < clusters; c++) {
      encoder.pass.setBindGroup(0, groups[c % 2]!);
      encoder.pass.dispatchWorkgroups(x, y);
    }
  }
  if (plan.iterations === 0) return;
  const assignment = encoder.scratch(4 * chunk.slots * n);
  const sums = encoder.scratch(4 * chunk.slots * clusters * D);
  const counts = encoder.scratch(4 * chunk.slots * clusters);
  // Per slot and iteration: did the assignment move a row? (zeroed: the encoder's own small scratch)
  const flagStride = plan.iterations;
  const changed = encoder.scratch(4 * chunk.slots * flagStride);
  // The CPU stops at a fixed point; here every iteration is dispatched, and a slot at its fixed
  // point returns at once from each (random keys settle after 8–10 of the 10 default iterations on the H100).
  for (let iteration = 0; iteration < plan.iterations; iteration++) {
    const at = { ...common, iteration, flagStride };
    await dispatchCentroidTile(encoder, 'assign', 0, [sampleColumns, buffers.centroids, assignment, changed], { slots: chunk.slots, count: n, clusters, groupSize: 1, iteration, flagStride });
    await run(kmeansSumWgsl(D % 4 === 0), [sampleRows, assignment, sums, counts, changed], chunk.slots * clusters * KMEANS_THREADS, at);
    await run(kmeansNormalizeWgsl(), [sums, counts, buffers.centroids, changed], chunk.slots * clusters, at);
  }
}

/**
 * Records, for one chunk: its keys and queries (from KV slot `slotOffset` of its buffers; key slots
 * `chunkKeyStride` rows apart) normalised into scratch buffers, channel-major (`[slot][D][row]`, `'columns'`), or only each
 * row's (shift, scale) (`'affine'`, two floats per row: what the membership's similarity tile
 * applies to the raw rows).
 */
export async function encodeRoutingNormalize(encoder: ChunkEncoder, plan: RoutingFitPlan, slotOffset: number, output: 'columns' | 'affine'): Promise<{ keys: GPUBufferLike; queries: GPUBufferLike }> {
  const { chunk, dims: d } = encoder;
  const keyRows = chunk.slots * d.keySeq;
  const queryRows = chunk.slots * d.groupSize * d.querySeq;
  const mode = plan.normalization === 'l2' ? 0 : 1;
  const perRow = output === 'affine' ? 8 : 4 * d.headDim;
  const keys = encoder.scratch(perRow * keyRows);
  const queries = encoder.scratch(perRow * queryRows);
  const pipeline = await encoder.pipeline(output === 'affine' ? rowAffineWgsl(d.headDim) : normalizeRowsWgsl(d.headDim));
  const perWorkgroup = output === 'affine' ? ROW_AFFINE_ROWS : normalizeRowsPerWorkgroup(d.headDim);
  const normalize = (source: GPUBufferLike, target: GPUBufferLike, rows: number, count: number, rowStride: number, rowBase: number) => {
    const [x, y] = dispatchGrid(Math.ceil(rows / perWorkgroup));
    const params = encoder.uniform(KMEANS_PARAMS, { rows, dim: d.headDim, mode, tilesX: x, count, rowStride, rowBase }, []);
    encoder.dispatch(pipeline, [params, source, target], x, y);
  };
  // Key slots lie the chunk's keyStride rows apart (a KV cache's capacity), query slots querySeq.
  const keyStride = chunkKeyStride(chunk, d);
  normalize(chunk.k, keys, keyRows, d.keySeq, keyStride, slotOffset * keyStride);
  normalize(chunk.q, queries, queryRows, d.querySeq, d.querySeq, slotOffset * d.groupSize * d.querySeq);
  return { keys, queries };
}

/**
 * Records, for one chunk: normalisation of its keys and queries (channel-major scratch buffers),
 * the k-means ({@link encodeRoutingCentroids}) on the call-wide `centroids`, and each key's /
 * query's top-r centroids into `keyTop` / `queryTop` at row `keyRowBase` / `queryRowBase`.
 */
export async function encodeRoutingFit(
  encoder: ChunkEncoder,
  plan: RoutingFitPlan,
  buffers: { readonly centroids: GPUBufferLike; readonly picked: GPUBufferLike; readonly draws?: { readonly index: GPUBufferLike; readonly value: GPUBufferLike } },
  top: { readonly keyTop: GPUBufferLike; readonly keyR: number; readonly keyRowBase: number; readonly queryTop: GPUBufferLike; readonly queryR: number; readonly queryRowBase: number },
): Promise<void> {
  const { chunk, dims: d } = encoder;
  const { keys, queries } = await encodeRoutingNormalize(encoder, plan, 0, 'columns');
  await encodeRoutingCentroids(encoder, plan, buffers);
  const { clusters } = plan;
  await dispatchCentroidTile(encoder, 'top', top.keyR, [keys, buffers.centroids, top.keyTop], { slots: chunk.slots, count: d.keySeq, clusters, groupSize: 1, rowBase: top.keyRowBase });
  await dispatchCentroidTile(encoder, 'top', top.queryR, [queries, buffers.centroids, top.queryTop], { slots: chunk.slots * d.groupSize, count: d.querySeq, clusters, groupSize: d.groupSize, rowBase: top.queryRowBase });
}

/**
 * Records, for one chunk: its subsample rows gathered from the raw keys (normalised, renormalised),
 * row-major into `rows` (`[slot][sample][D]`) and channel-major into `columns` (`[slot][D][sample]`).
 */
async function encodeGather(encoder: ChunkEncoder, plan: RoutingFitPlan, picked: GPUBufferLike, rows: GPUBufferLike, columns: GPUBufferLike): Promise<void> {
  const { chunk, dims: d } = encoder;
  const total = chunk.slots * plan.sample;
  const [x, y] = dispatchGrid(Math.ceil(total / normalizeRowsPerWorkgroup(d.headDim)));
  const mode = plan.normalization === 'l2' ? 0 : 1;
  const params = encoder.uniform(KMEANS_PARAMS, { rows: total, dim: d.headDim, mode, slots: chunk.slots, count: d.keySeq, rowStride: chunkKeyStride(chunk, d), sample: plan.sample, slotBase: chunk.slot0, tilesX: x }, []);
  encoder.dispatch(await encoder.pipeline(kmeansGatherWgsl(d.headDim)), [params, chunk.k, picked, rows, columns], x, y);
}

/** Records, for one chunk: its subsample rows gathered from the raw keys (normalised, renormalised) into `out` (`[slot][sample][D]`). */
export async function encodeRoutingSample(encoder: ChunkEncoder, plan: RoutingFitPlan, picked: GPUBufferLike, out: GPUBufferLike): Promise<void> {
  await encodeGather(encoder, plan, picked, out, encoder.scratch(4 * encoder.chunk.slots * plan.sample * encoder.dims.headDim));
}

/**
 * Runs the routing k-means (seeded on the CPU, iterated on the GPU) and the nearest-centroid
 * memberships of every key and query on the GPU, and reads them back (for the checks).
 */
export async function fitRoutingGpu(backend: GpuBackend, input: AttentionInput, config: RoutingConfig, seeding: 'cpu' | 'gpu' = 'cpu'): Promise<GpuRoutingFit> {
  const d = validateAttentionInput(input);
  const plan = routingFitPlan(d, config);
  const { clusters } = plan;
  const slots = d.batch * d.kvHeads;
  const rk = Math.min(config.keyClusters, clusters);
  const rq = Math.min(config.queryClusters, clusters);
  const initial = seeding === 'cpu' ? seedCentroids(input, d, config, clusters) : new Float32Array(slots * clusters * d.headDim);
  const device = backend.context.device;
  const make = (bytes: number) => device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 4) * 4), usage: STORAGE | COPY_SRC | COPY_DST });
  const centroids = make(initial.byteLength);
  const picked = make(plan.picked.byteLength);
  const keyTop = make(4 * slots * d.keySeq * rk);
  const queryTop = make(4 * slots * d.groupSize * d.querySeq * rq);
  device.queue.writeBuffer(centroids, 0, initial);
  device.queue.writeBuffer(picked, 0, plan.picked);
  const drawIndex = make(plan.drawIndex.byteLength);
  const drawValue = make(plan.drawValue.byteLength);
  device.queue.writeBuffer(drawIndex, 0, plan.drawIndex);
  device.queue.writeBuffer(drawValue, 0, plan.drawValue);
  const draws = seeding === 'gpu' ? { index: drawIndex, value: drawValue } : undefined;
  const resident = backend.upload(input, d);
  try {
    await backend.runKernels(resident, async (encoder) => {
      const { chunk } = encoder;
      await encodeRoutingFit(encoder, plan, { centroids, picked, ...(draws ? { draws } : {}) }, { keyTop, keyR: rk, keyRowBase: chunk.slot0 * d.keySeq, queryTop, queryR: rq, queryRowBase: chunk.slot0 * d.groupSize * d.querySeq });
    });
    const u32 = async (buffer: GPUBufferLike, count: number) => new Uint32Array((await backend.read(buffer, 4 * count)).buffer, 0, count);
    return {
      clusters,
      sampleCount: plan.sample,
      centroids: (await backend.read(centroids, initial.byteLength)).slice(0, initial.length),
      keyTop: await u32(keyTop, slots * d.keySeq * rk),
      keyClusters: rk,
      queryTop: await u32(queryTop, slots * d.groupSize * d.querySeq * rq),
      queryClusters: rq,
    };
  } finally {
    backend.release(resident);
    for (const b of [centroids, picked, keyTop, queryTop, drawIndex, drawValue]) b.destroy();
  }
}
