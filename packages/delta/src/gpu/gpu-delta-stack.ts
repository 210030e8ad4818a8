/**
 * DELTA's model-level layer reuse on the GPU: one decode step through a stack of layers whose KV
 * caches live on the device, every layer's work recorded into one compute pass and submitted
 * once, nothing read back between layers (the model-level policy `createDeltaPolicy` and the
 * trace-stack runner `runStackStep` are the CPU counterparts). Per layer, by its role in the
 * {@link LayerPlan} (DELTA's: from `fullCacheLayers`, a full layer followed by a non-full one is
 * a Δ-layer):
 *
 * - `full`: dense split-K decode (the backend's `decodePartialWgsl` + `decodeMergeWgsl`, the kernels
 *   of `runDecodeAttention`).
 * - `delta` (Δ-layer): the same dense decode with the score dump (the backend's
 *   `decodePartialWgsl({ dumpScores: true })` writes every logit into a call-wide buffer, and
 *   its merge, `decodeMergeWgsl(…, { copyLse: true })`, writes each row's lse beside them), then DELTA's page scores
 *   `Σ_page exp(max_h (logit − lse_h))` over every query head of the batch (`page-scores-wgsl.ts`)
 *   and its selection, the last `L` pages plus the top `K − L` older ones, ascending, ties to the
 *   lower page (`top-k-rows-wgsl.ts`): one page list per batch, in this layer's selection buffers.
 * - `sparse`: exact decode attention over its source Δ-layer's page list in its own cache, split-K
 *   over the list (the backend's page-list mode, `decodePartialWgsl({ keys: 'pages' })`) and the
 *   backend's merge. A sparse layer without a source
 *   attends to the last `K` pages (the reference's placeholder, as on the CPU).
 *
 * As on the CPU, the subset is active only when the cache holds more than `K` pages; otherwise
 * every layer runs dense. Decode steps only: one query per head at the last position.
 *
 * {@link runDeltaStackDecode} is the benchmark: random K/V generated on the GPU for every layer,
 * DELTA's step against the dense step (dense split-K decode in every layer), alternated.
 *
 * @see arXiv:2510.09883 §3 (DELTA: Δ-layers, unified head selection, stable recency window)
 */
import { ConfigError, ShapeError, parseConfig, type AttentionDims, type BackendInfo, type BenchmarkRow } from '@sparse-attn/core';
import {
  DECODE_DUMP_PARAMS,
  DECODE_MERGE_COPY_PARAMS,
  DECODE_MERGE_PARAMS,
  DECODE_PAGES_PARAMS,
  DECODE_PARTIAL_PARAMS,
  DECODE_THREADS,
  WEBGPU_FLAGS,
  decodeMergeGrid,
  decodeMergeWgsl,
  decodePartialRecord,
  chunkKeyStride,
  decodePartialWgsl,
  describeBackend,
  dispatchGrid,
  splitKPlan,
  type GpuBackend,
  type ResidentAttention,
  type ResidentChunk,
} from '@sparse-attn/backend-gpu';
import { deltaConfigSchema, type DeltaConfig, type DeltaConfigInput } from '../delta.js';
import { defaultFullCacheLayers, layerPlanFromFullCacheLayers, roleCounts, validateLayerPlan, type LayerPlan, type LayerRole } from '../layer-plan.js';
import { recentPages } from '../select-pages.js';
import { PAGE_SCORES_PARAMS, pageScoreGroups, pageScoresWgsl } from './page-scores-wgsl.js';
import { TOP_K_ROWS_PARAMS, topKRowsWgsl } from './top-k-rows-wgsl.js';

const { STORAGE, UNIFORM, COPY_DST, COPY_SRC } = WEBGPU_FLAGS;

/** A device buffer (the type of the backend's resident buffers; this package carries no WebGPU types). */
type DeviceBuffer = ResidentChunk['k'];
/** A compiled compute pipeline on the backend's device. */
type Pipeline = Awaited<ReturnType<GpuBackend['context']['device']['createComputePipelineAsync']>>;

/** Options of {@link createGpuDeltaStack}. */
export interface GpuDeltaStackOptions {
  /** DELTA's options (`pageSize`, `pageBudget`, `recentPages`, `fullCacheLayers`); the reference defaults otherwise. */
  readonly config?: DeltaConfigInput;
  /** A plan to run instead of the one derived from `fullCacheLayers` (as `createDeltaPolicy`'s). */
  readonly plan?: LayerPlan;
}

/** Which step {@link GpuDeltaStack.run} records. */
export type StackMode = 'delta' | 'dense';

/** Options of {@link GpuDeltaStack.run}. */
export interface StackRunOptions {
  /** Only the layers of these roles (their part of the step, for per-role timings); default every layer. */
  readonly roles?: readonly LayerRole[];
  /** Steps recorded back to back into the one submission (timing: the result is per step). Default 1. */
  readonly steps?: number;
}

/** A prepared layer stack: every kernel compiled and bound, one submission per {@link run}. */
export interface GpuDeltaStack {
  readonly plan: LayerPlan;
  readonly config: DeltaConfig;
  /** Every layer's attention dims (one decode query per head over `keySeq` keys). */
  readonly dims: AttentionDims;
  /** Whether sparse layers attend to a subset (the cache holds more than `pageBudget` pages). */
  readonly active: boolean;
  /** Pages in each list: `min(pageBudget, ⌈keySeq / pageSize⌉)`. */
  readonly stride: number;
  /**
   * Records one step (`'delta'`: the plan's roles; `'dense'`: dense split-K decode in every layer)
   * into one compute pass, submits it and resolves with the milliseconds per step from the
   * submission until the queue drained (GPU time plus one completion round trip, shared by the
   * `steps`); the host's encoding time per step is {@link lastEncodeMs}. Every layer's output and
   * lse land in its resident's `out` / `lse` (read them with `backend.readOutput(layer)`).
   */
  run(mode: StackMode, options?: StackRunOptions): Promise<number>;
  /** Host milliseconds per step the last {@link run} spent recording its commands (bind groups are prebuilt). */
  readonly lastEncodeMs: number;
  /**
   * The page lists of the last delta step, per layer: for Δ-layers the list they selected, for
   * sparse layers the list they attended to (their source's, or the placeholder), per batch;
   * undefined for full layers and when the subset is not active.
   */
  readSelections(): Promise<(readonly Int32Array[] | undefined)[]>;
  /** Frees the stack's own buffers (not the layers' residents). */
  destroy(): void;
}

const pipelineCache = new WeakMap<object, Map<string, Promise<Pipeline>>>();

/** A compiled pipeline of a WGSL compute shader (entry point `main`), cached per device. */
function pipeline(backend: GpuBackend, code: string): Promise<Pipeline> {
  const device = backend.context.device;
  let cache = pipelineCache.get(device);
  if (!cache) pipelineCache.set(device, (cache = new Map()));
  let found = cache.get(code);
  if (!found) {
    found = (async () => {
      const module = device.createShaderModule({ code });
      const info = await module.getCompilationInfo();
      const errors = info.messages.filter((m: { type: string }) => m.type === 'error');
      if (errors.length > 0) {
        const lines = code.split('\n');
        throw new Error(`WGSL compilation failed:\n${errors.map((m: { lineNum: number; message: string }) => `line ${m.lineNum}: ${m.message}\n    ${lines[m.lineNum - 1]?.trim() ?? ''}`).join('\n')}`);
      }
      return device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    })();
    cache.set(code, found);
  }
  return found;
}

/** Checks that every layer is a decode call of the same shape; returns the shared dims. */
function checkLayers(layers: readonly ResidentAttention[]): AttentionDims {
  if (layers.length === 0) throw new ShapeError('DELTA stack: no layers');
  const d = layers[0]!.dims;
  for (const [l, layer] of layers.entries()) {
    const e = layer.dims;
    if (e.querySeq !== 1 || e.queryOffset !== e.keySeq - 1 || !e.causal) {
      throw new ShapeError(`DELTA stack: layer ${l} is not a causal decode call (one query per head at the last of ${e.keySeq} positions; got ${e.querySeq} queries at offset ${e.queryOffset})`);
    }
    for (const key of ['batch', 'queryHeads', 'kvHeads', 'keySeq', 'headDim', 'valueDim', 'scale'] as const) {
      if (e[key] !== d[key]) throw new ShapeError(`DELTA stack: layer ${l} has ${key} ${e[key]}, layer 0 ${d[key]} (layer reuse needs every layer's cache to hold the same tokens)`);
    }
    let slots = 0;
    for (const chunk of layer.chunks) {
      if (chunk.slot0 !== slots) throw new ShapeError(`DELTA stack: layer ${l}'s chunks do not cover its KV slots in order`);
      slots += chunk.slots;
    }
    if (slots !== e.batch * e.kvHeads) throw new ShapeError(`DELTA stack: layer ${l}'s chunks hold ${slots} KV slots, expected ${e.batch * e.kvHeads}`);
  }
  return d;
}

/** DELTA's config and layer plan for `layers` layers, validated (the CPU policy's errors). */
export function resolveDeltaStackPlan(layers: number, options: GpuDeltaStackOptions = {}): { config: DeltaConfig; plan: LayerPlan } {
  const config = parseConfig('delta', deltaConfigSchema, options.config);
  const plan = options.plan ?? layerPlanFromFullCacheLayers(config.fullCacheLayers ?? defaultFullCacheLayers(layers), layers);
  validateLayerPlan(plan, layers);
  return { config, plan };
}

/** Keys per partition the sparse layers aim for (one 64-key tile per workgroup). */
const SPARSE_PARTITION_KEYS = DECODE_THREADS;

interface Op {
  readonly pipeline: Pipeline;
  readonly group: unknown;
  readonly x: number;
  readonly y: number;
}

interface SelectionBuffers {
  readonly bounds: DeviceBuffer;
  readonly pages: DeviceBuffer;
}

/**
 * Prepares DELTA's layer stack over `layers` (decode calls: one query per head at the last
 * position; `backend.upload` of a decode input, a `GpuKVCache` view, or `randomResident`): plan
 * and config validated with the CPU policy's errors before any GPU work, kernels compiled, every
 * dispatch bound. The same resident may back several layers (the benchmark's memory cap).
 */
export async function createGpuDeltaStack(backend: GpuBackend, layers: readonly ResidentAttention[], options: GpuDeltaStackOptions = {}): Promise<GpuDeltaStack> {
  const { config, plan } = resolveDeltaStackPlan(layers.length, options);
  const d = checkLayers(layers);
  const { pageSize, pageBudget } = config;
  const pages = Math.ceil(d.keySeq / pageSize);
  const active = pages > pageBudget;
  const stride = Math.min(pageBudget, pages);
  const device = backend.context.device;
  const owned: DeviceBuffer[] = [];
  const buffer = (bytes: number, usage: number): DeviceBuffer => {
    const b = device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
    owned.push(b);
    return b;
  };
  const uniform = (fields: readonly string[], values: Readonly<Record<string, number>>, floats: readonly string[] = ['scale']): DeviceBuffer => {
    const data = new ArrayBuffer(Math.ceil((fields.length * 4) / 16) * 16);
    const u32 = new Uint32Array(data);
    const f32 = new Float32Array(data);
    fields.forEach((name, i) => {
      if (floats.includes(name)) f32[i] = values[name] ?? 0;
      else u32[i] = values[name] ?? 0;
    });
    const b = buffer(data.byteLength, UNIFORM | COPY_DST);
    device.queue.writeBuffer(b, 0, data);
    return b;
  };
  const op = (p: Pipeline, buffers: readonly DeviceBuffer[], x: number, y: number): Op => ({
    pipeline: p,
    group: device.createBindGroup({ layout: p.getBindGroupLayout(0), entries: buffers.map((b, binding) => ({ binding, resource: { buffer: b } })) }),
    x,
    y,
  });
  try {
    const kernel = { headDim: d.headDim, valueDim: d.valueDim };
    const [densePartial, merge, dumpPartial, mergeCopy, pageScores, topK, pageDecode] = await Promise.all([
      pipeline(backend, decodePartialWgsl(kernel)),
      pipeline(backend, decodeMergeWgsl(d.valueDim)),
      pipeline(backend, decodePartialWgsl({ ...kernel, dumpScores: true })),
      pipeline(backend, decodeMergeWgsl(d.valueDim, { copyLse: true })),
      pipeline(backend, pageScoresWgsl()),
      pipeline(backend, topKRowsWgsl()),
      pipeline(backend, decodePartialWgsl({ ...kernel, keys: 'pages' })),
    ]);
    const record = decodePartialRecord(d.valueDim);
    const split = splitKPlan(d);
    const pagesPerPartition = Math.max(1, Math.floor(SPARSE_PARTITION_KEYS / pageSize));
    const sparsePartitions = Math.max(1, Math.ceil(stride / pagesPerPartition));
    const largestChunk = Math.max(...layers.flatMap((layer) => layer.chunks.map((c) => c.slots)));
    const querySlotsMax = largestChunk * d.groupSize;
    // Scratch shared by every layer: the layers run one after the other in the pass, as in a model.
    const denseScratch = buffer(querySlotsMax * split.partitions * record * 4, STORAGE);
    const sparseScratch = buffer(querySlotsMax * sparsePartitions * record * 4, STORAGE);
    const logits = buffer(d.batch * d.queryHeads * d.keySeq * 4, STORAGE);
    const lseAll = buffer(d.batch * d.queryHeads * 4, STORAGE);
    const scores = buffer(d.batch * pages * 4, STORAGE);

    const denseOps = (layer: ResidentAttention, dump: boolean): Op[] =>
      layer.chunks.flatMap((chunk) => {
        const rows = chunk.slots * d.groupSize;
        const [px, py] = dispatchGrid(rows * split.partitions);
        const params = uniform(DECODE_PARTIAL_PARAMS, {
          querySeq: 1,
          keySeq: d.keySeq,
          queryOffset: d.queryOffset,
          causal: 1,
          slots: rows,
          groupSize: d.groupSize,
          partitions: split.partitions,
          partitionSize: split.partitionSize,
          tilesX: px,
          scale: d.scale,
          keyStride: chunkKeyStride(chunk, d),
        });
        const [mx, my] = decodeMergeGrid(rows, d.valueDim);
        if (!dump) {
          const mergeParams = uniform(DECODE_MERGE_PARAMS, { rows, partitions: split.partitions, tilesX: mx });
          return [op(densePartial, [params, chunk.q, chunk.k, chunk.v, denseScratch], px, py), op(merge, [mergeParams, denseScratch, chunk.out, chunk.lse], mx, my)];
        }
        // A Δ-layer: logits dumped by the partial pass, each row's lse copied beside them by the merge.
        const dumpParams = uniform(DECODE_DUMP_PARAMS, { querySlotBase: chunk.slot0 * d.groupSize });
        const mergeParams = uniform(DECODE_MERGE_COPY_PARAMS, { rows, partitions: split.partitions, tilesX: mx, lseBase: chunk.slot0 * d.groupSize });
        return [
          op(dumpPartial, [params, chunk.q, chunk.k, chunk.v, denseScratch, logits, dumpParams], px, py),
          op(mergeCopy, [mergeParams, denseScratch, chunk.out, chunk.lse, lseAll], mx, my),
        ];
      });

    const selectOps = (target: SelectionBuffers): Op[] => {
      const { pageGroups, workgroups } = pageScoreGroups(d.batch, 1, pages, pageSize);
      const [sx, sy] = dispatchGrid(workgroups);
      const scoreParams = uniform(PAGE_SCORES_PARAMS, { batches: d.batch, heads: d.queryHeads, rows: 1, rowStart: 0, queryOffset: d.queryOffset, keySeq: d.keySeq, pageSize, pages, tilesX: sx, pageGroups });
      const [tx, ty] = dispatchGrid(d.batch);
      const topKParams = uniform(TOP_K_ROWS_PARAMS, {
        slots: d.batch,
        rows: 1,
        rowStart: 0,
        querySeq: 1,
        queryOffset: d.queryOffset,
        valueSlotBase: 0,
        valueSlotDiv: 1,
        valueStride: pages,
        unit: pageSize,
        budget: pageBudget,
        recent: config.recentPages,
        stride,
        tilesX: tx,
      });
      return [op(pageScores, [scoreParams, logits, lseAll, scores], sx, sy), op(topK, [topKParams, scores, target.bounds, target.pages], tx, ty)];
    };

    const sparseOps = (layer: ResidentAttention, source: SelectionBuffers): Op[] =>
      layer.chunks.flatMap((chunk) => {
        const rows = chunk.slots * d.groupSize;
        const [px, py] = dispatchGrid(rows * sparsePartitions);
        const params = uniform(DECODE_PAGES_PARAMS, {
          keySeq: d.keySeq,
          slots: rows,
          groupSize: d.groupSize,
          kvHeads: d.kvHeads,
          slot0: chunk.slot0,
          pageSize,
          partitions: sparsePartitions,
          pagesPerPartition,
          tilesX: px,
          scale: d.scale,
          keyStride: chunkKeyStride(chunk, d),
        });
        const [mx, my] = decodeMergeGrid(rows, d.valueDim);
        const mergeParams = uniform(DECODE_MERGE_PARAMS, { rows, partitions: sparsePartitions, tilesX: mx });
        return [op(pageDecode, [params, chunk.q, chunk.k, chunk.v, source.bounds, source.pages, sparseScratch], px, py), op(merge, [mergeParams, sparseScratch, chunk.out, chunk.lse], mx, my)];
      });

    // Per layer: its dense-step ops and its delta-step ops.
    const selections: (SelectionBuffers | undefined)[] = [];
    let placeholder: SelectionBuffers | undefined;
    const placeholderBuffers = (): SelectionBuffers => {
      if (placeholder) return placeholder;
      const list = recentPages(d.keySeq, pageSize, pageBudget);
      const bounds = new Uint32Array(2 * d.batch);
      const all = new Uint32Array(d.batch * stride);
      for (let b = 0; b < d.batch; b++) {
        bounds[2 * b] = b * stride;
        bounds[2 * b + 1] = b * stride + list.length;
        all.set(list, b * stride);
      }
      placeholder = { bounds: buffer(bounds.byteLength, STORAGE | COPY_DST | COPY_SRC), pages: buffer(all.byteLength, STORAGE | COPY_DST | COPY_SRC) };
      device.queue.writeBuffer(placeholder.bounds, 0, bounds);
      device.queue.writeBuffer(placeholder.pages, 0, all);
      return placeholder;
    };
    const layerOps = layers.map((layer, l) => {
      const dense = denseOps(layer, false);
      const role = plan.roles[l]!;
      if (!active || role === 'full') {
        selections.push(undefined);
        return { role, dense, delta: dense };
      }
      if (role === 'delta') {
        const target: SelectionBuffers = { bounds: buffer(2 * d.batch * 4, STORAGE | COPY_SRC), pages: buffer(d.batch * stride * 4, STORAGE | COPY_SRC) };
        selections.push(target);
        return { role, dense, delta: [...denseOps(layer, true), ...selectOps(target)] };
      }
      const sourceLayer = plan.sources[l]!;
      const source = sourceLayer === -1 ? placeholderBuffers() : selections[sourceLayer]!;
      selections.push(source);
      return { role, dense, delta: sparseOps(layer, source) };
    });

    let lastEncodeMs = 0;
    return {
      plan,
      config,
      dims: d,
      active,
      stride,
      async run(mode, runOptions = {}) {
        const steps = Math.max(1, Math.floor(runOptions.steps ?? 1));
        const roles = runOptions.roles;
        const ops = layerOps.filter((x) => !roles || roles.includes(x.role)).flatMap((x) => (mode === 'delta' ? x.delta : x.dense));
        device.pushErrorScope('validation');
        const encodeStarted = performance.now();
        const encoder = device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        for (let s = 0; s < steps; s++) {
          for (const o of ops) {
            pass.setPipeline(o.pipeline);
            pass.setBindGroup(0, o.group);
            pass.dispatchWorkgroups(o.x, o.y);
          }
        }
        pass.end();
        const commands = encoder.finish();
        const submitted = performance.now();
        device.queue.submit([commands]);
        await device.queue.onSubmittedWorkDone();
        const ms = performance.now() - submitted;
        lastEncodeMs = (submitted - encodeStarted) / steps;
        const error = await device.popErrorScope();
        if (error) throw new Error(`WebGPU validation error: ${error.message}`);
        return ms / steps;
      },
      get lastEncodeMs() {
        return lastEncodeMs;
      },
      async readSelections() {
        // Every distinct selection's bounds and pages in one readback.
        const distinct = [...new Set(selections.filter((s): s is SelectionBuffers => s !== undefined))];
        const data = await backend.readAll(distinct.flatMap((s) => [{ buffer: s.bounds, bytes: 2 * d.batch * 4 }, { buffer: s.pages, bytes: d.batch * stride * 4 }]));
        const u32 = (f: Float32Array) => new Uint32Array(f.buffer, f.byteOffset, f.length);
        const read = new Map<SelectionBuffers, Int32Array[]>(
          distinct.map((s, i) => {
            const bounds = u32(data[2 * i]!);
            const all = u32(data[2 * i + 1]!);
            return [s, Array.from({ length: d.batch }, (_, b) => Int32Array.from(all.subarray(bounds[2 * b]!, bounds[2 * b + 1]!)))];
          }),
        );
        return selections.map((s) => (s ? read.get(s) : undefined));
      },
      destroy() {
        for (const b of owned.splice(0)) b.destroy();
      },
    };
  } catch (error) {
    for (const b of owned.splice(0)) b.destroy();
    throw error;
  }
}

/** Options of {@link runDeltaStackDecode}. Defaults: the CPU `delta-trace-stack` benchmark's setup at 64k. */
export interface DeltaStackBenchOptions {
  /** Decoder layers. Default 28. */
  readonly layers?: number;
  /** Default 1. */
  readonly batch?: number;
  /** Default 8. */
  readonly queryHeads?: number;
  /** Default 2. */
  readonly kvHeads?: number;
  /** Default 64 (values have the same dim). */
  readonly headDim?: number;
  /** Keys in every layer's cache (the decode query is the last position). Default 65536. */
  readonly keySeq?: number;
  /** DELTA's options; default the reference's P 16, K 64, L 8, full layers 0 1 2 14 22 scaled to the depth. */
  readonly config?: DeltaConfigInput;
  readonly plan?: LayerPlan;
  /** Warm-up: at least this many steps of each kind... Default 3. */
  readonly warmup?: number;
  /** ...and at least this long, alternating (an idle GPU starts at low clocks). Default 500 ms. */
  readonly warmupMs?: number;
  /** Timed pairs (dense step, DELTA step, in alternating order). Default 15. */
  readonly repeats?: number;
  /** Steps recorded into each timed submission (amortises the submit/notify round trip). Default 4. */
  readonly stepsPerSample?: number;
  /** Per-role timings (full, Δ and sparse layers alone). Default true. */
  readonly breakdown?: boolean;
  /**
   * Largest K/V bytes allocated: beyond it, layers share caches cyclically (at least two apart,
   * so no layer finds its keys in L2). Default 24 GiB (all 28 layers up to H 32, D 128, S 32k).
   */
  readonly maxKvBytes?: number;
  readonly seed?: number;
  readonly progress?: (message: string) => void;
}

/** Medians of one timed kind of step. */
export interface StackTiming {
  readonly medianMs: number;
  readonly minMs: number;
  readonly samplesMs: readonly number[];
}

/** What {@link runDeltaStackDecode} measured. */
export interface DeltaStackBenchResult {
  readonly backend: BackendInfo;
  readonly layers: number;
  readonly roles: Readonly<Record<LayerRole, number>>;
  readonly plan: LayerPlan;
  /** Distinct K/V caches allocated (layers beyond share them cyclically). */
  readonly physicalLayers: number;
  readonly batch: number;
  readonly queryHeads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly keySeq: number;
  readonly pageSize: number;
  readonly pageBudget: number;
  readonly recentPages: number;
  /** Whether the sparse layers attended to a subset. */
  readonly active: boolean;
  /** Pages in each Δ-layer's list (batch 0 of the last Δ-layer). */
  readonly pagesSelected: number;
  /** Keys a sparse layer attends to (batch 0, last Δ-layer's list). */
  readonly selectedKeys: number;
  /** Attended keys over all layers ÷ (layers × keySeq): the step's density. */
  readonly density: number;
  /** K/V bytes the attention kernels read per step. */
  readonly kvBytesDense: number;
  readonly kvBytesDelta: number;
  /**
   * Per-step medians (ms) of DELTA's step and the dense step: from submission to queue completion
   * (the GPU's work plus one completion round trip per `stepsPerSample` steps), without the
   * host's command recording (in {@link encodeMs}).
   */
  readonly deltaMs: number;
  readonly denseMs: number;
  /** denseMs / deltaMs. */
  readonly speedup: number;
  /** Median over the timed pairs of dense ÷ DELTA (steadier when clocks move). */
  readonly pairedSpeedup: number;
  readonly delta: StackTiming;
  readonly dense: StackTiming;
  /** Host milliseconds per step spent recording the commands (medians; not in the timings above). */
  readonly encodeMs: { readonly delta: number; readonly dense: number };
  /** Per-layer medians of each role's part of DELTA's step, each timed alone (a full layer = a dense layer). */
  readonly breakdown?: { readonly fullLayerMs: number; readonly deltaLayerMs: number; readonly sparseLayerMs: number };
  readonly stepsPerSample: number;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function timing(samples: readonly number[]): StackTiming {
  return { medianMs: median(samples), minMs: Math.min(...samples), samplesMs: samples };
}

/** Dims of one causal decode query per head over `keySeq` resident keys. */
export function decodeStackDims(batch: number, queryHeads: number, kvHeads: number, keySeq: number, headDim: number): AttentionDims {
  const kv = { batch, heads: kvHeads, seq: keySeq, dim: headDim, capacity: keySeq };
  return {
    batch,
    queryHeads,
    kvHeads,
    groupSize: queryHeads / kvHeads,
    querySeq: 1,
    keySeq,
    headDim,
    valueDim: headDim,
    causal: true,
    scale: 1 / Math.sqrt(headDim),
    queryOffset: keySeq - 1,
    qDims: { batch, heads: queryHeads, seq: 1, dim: headDim, capacity: 1 },
    kDims: kv,
    vDims: kv,
  };
}

/** Keys of `list`'s pages within `keySeq` (the last page may be partial). */
function pageKeys(list: ArrayLike<number>, pageSize: number, keySeq: number): number {
  let keys = 0;
  for (let i = 0; i < list.length; i++) keys += Math.max(0, Math.min(pageSize, keySeq - list[i]! * pageSize));
  return keys;
}

/**
 * DELTA's layer-stack decode step against the dense step on the GPU, the figure comparable to the
 * CPU `delta-trace-stack` suite's: `layers` caches of seeded N(0, 1) K/V generated on the device
 * (q too: one decode query per head per layer), DELTA's step (see the module comment) and the
 * dense step (split-K decode in every layer) each recorded `stepsPerSample` times into one
 * submission, timed (submission to queue completion; the host's recording apart) alternately
 * after a warm-up; per-step medians, their ratio and the median of
 * the per-pair ratios. The selections are read back once, after timing, for the density.
 * Scratch: one `[B·Hq][keySeq]` logits buffer (8 MiB at Hq 32, 64k) shared by the Δ-layers, the
 * split-K partial records, and `K` pages per batch per Δ-layer; nothing S × S.
 */
export async function runDeltaStackDecode(backend: GpuBackend, options: DeltaStackBenchOptions = {}): Promise<DeltaStackBenchResult> {
  const layers = options.layers ?? 28;
  const batch = options.batch ?? 1;
  const queryHeads = options.queryHeads ?? 8;
  const kvHeads = options.kvHeads ?? 2;
  const headDim = options.headDim ?? 64;
  const keySeq = options.keySeq ?? 65536;
  for (const [name, value] of Object.entries({ layers, batch, queryHeads, kvHeads, headDim, keySeq })) {
    if (!(Number.isInteger(value) && value >= 1)) throw new ConfigError(`DELTA stack benchmark: ${name} must be a positive integer, got ${value}`);
  }
  if (queryHeads % kvHeads !== 0) throw new ConfigError(`DELTA stack benchmark: queryHeads ${queryHeads} must be a multiple of kvHeads ${kvHeads}`);
  const { config, plan } = resolveDeltaStackPlan(layers, options);
  const repeats = Math.max(1, options.repeats ?? 15);
  const stepsPerSample = Math.max(1, options.stepsPerSample ?? 4);
  const d = decodeStackDims(batch, queryHeads, kvHeads, keySeq, headDim);
  const layerKvBytes = 2 * batch * kvHeads * keySeq * headDim * 4;
  const fit = Math.floor((options.maxKvBytes ?? 24 * 2 ** 30) / layerKvBytes);
  const physicalLayers = Math.min(layers, Math.max(Math.min(2, layers), fit));
  const seed = options.seed ?? 1;
  options.progress?.(`delta stack: ${layers} layers (${physicalLayers} caches), B=${batch} Hq=${queryHeads} Hkv=${kvHeads} D=${headDim} S=${keySeq}`);
  const caches: ResidentAttention[] = [];
  try {
    for (let p = 0; p < physicalLayers; p++) caches.push(await backend.randomResident(d, seed * 7919 + p));
    const stack = await createGpuDeltaStack(backend, Array.from({ length: layers }, (_, l) => caches[l % physicalLayers]!), { config, plan });
    try {
      const warmup = Math.max(1, options.warmup ?? 3);
      const warmupMs = options.warmupMs ?? 500;
      const started = performance.now();
      for (let i = 0; i < warmup || performance.now() - started < warmupMs; i++) {
        await stack.run('dense', { steps: stepsPerSample });
        await stack.run('delta', { steps: stepsPerSample });
      }
      const dense: number[] = [];
      const delta: number[] = [];
      const denseEncode: number[] = [];
      const deltaEncode: number[] = [];
      const time = async (mode: StackMode) => {
        const ms = await stack.run(mode, { steps: stepsPerSample });
        (mode === 'dense' ? dense : delta).push(ms);
        (mode === 'dense' ? denseEncode : deltaEncode).push(stack.lastEncodeMs);
      };
      for (let i = 0; i < repeats; i++) {
        for (const mode of i % 2 === 0 ? (['dense', 'delta'] as const) : (['delta', 'dense'] as const)) await time(mode);
      }
      const counts = roleCounts(plan);
      let breakdown: DeltaStackBenchResult['breakdown'];
      if (options.breakdown ?? true) {
        const perLayer = async (mode: StackMode, role: LayerRole, count: number) => {
          if (count === 0) return 0;
          const samples: number[] = [];
          for (let i = 0; i < Math.max(3, Math.ceil(repeats / 2)); i++) samples.push(await stack.run(mode, { roles: [role], steps: stepsPerSample }));
          return median(samples) / count;
        };
        // A full layer is a dense layer: timed over every layer of the dense step.
        breakdown = {
          fullLayerMs: median(dense) / layers,
          deltaLayerMs: await perLayer('delta', 'delta', counts.delta),
          sparseLayerMs: await perLayer('delta', 'sparse', counts.sparse),
        };
      }
      // The lists of the last DELTA step, for the density (after timing: nothing is read back while timed).
      const lists = await stack.readSelections();
      let attended = 0;
      let selectedKeys = keySeq;
      let pagesSelected = Math.ceil(keySeq / config.pageSize);
      for (const [l, role] of plan.roles.entries()) {
        const list = lists[l]?.[0];
        if (role === 'sparse' && list) attended += pageKeys(list, config.pageSize, keySeq);
        else attended += keySeq;
        if (role === 'delta' && list) {
          pagesSelected = list.length;
          selectedKeys = pageKeys(list, config.pageSize, keySeq);
        }
      }
      const kvPerKey = 2 * batch * kvHeads * headDim * 4;
      const deltaTiming = timing(delta);
      const denseTiming = timing(dense);
      return {
        backend: backend.info,
        layers,
        roles: counts,
        plan,
        physicalLayers,
        batch,
        queryHeads,
        kvHeads,
        headDim,
        keySeq,
        pageSize: config.pageSize,
        pageBudget: config.pageBudget,
        recentPages: config.recentPages,
        active: stack.active,
        pagesSelected,
        selectedKeys,
        density: attended / (layers * keySeq),
        kvBytesDense: layers * keySeq * kvPerKey,
        kvBytesDelta: attended * kvPerKey,
        deltaMs: deltaTiming.medianMs,
        denseMs: denseTiming.medianMs,
        speedup: denseTiming.medianMs / deltaTiming.medianMs,
        pairedSpeedup: median(dense.map((x, i) => x / delta[i]!)),
        delta: deltaTiming,
        dense: denseTiming,
        encodeMs: { delta: median(deltaEncode), dense: median(denseEncode) },
        ...(breakdown ? { breakdown } : {}),
        stepsPerSample,
      };
    } finally {
      stack.destroy();
    }
  } finally {
    for (const c of caches) backend.release(c);
  }
}

/**
 * The benchmark rows of a {@link runDeltaStackDecode} result (suite `gpu-delta-stack`): the dense
 * step and DELTA's step, ms per decode step (all layers), DELTA's with its speedups, density,
 * pages and per-role breakdown.
 */
export function deltaStackRows(result: DeltaStackBenchResult): BenchmarkRow[] {
  const r = result;
  const base = {
    suite: 'gpu-delta-stack',
    // The head shape is part of the name: the suite runs Hq 8 / Hkv 2 and Hq 32 / Hkv 8, both GQA 4.
    workload: `gaussian-gpu-stack-${r.layers}l-h${r.queryHeads}kv${r.kvHeads}d${r.headDim}`,
    seqLength: r.keySeq,
    backend: describeBackend(r.backend),
  };
  const shape = { layers: r.layers, physicalLayers: r.physicalLayers, batch: r.batch, heads: r.queryHeads, kvHeads: r.kvHeads, headDim: r.headDim, stepsPerSample: r.stepsPerSample };
  return [
    { ...base, method: 'dense', metrics: { ms: r.denseMs, minMs: r.dense.minMs, encodeMs: r.encodeMs.dense, kvBytes: r.kvBytesDense, ...shape } },
    {
      ...base,
      method: 'delta',
      budget: `K=${r.pageBudget}`,
      metrics: {
        ms: r.deltaMs,
        minMs: r.delta.minMs,
        encodeMs: r.encodeMs.delta,
        speedupVsDense: r.speedup,
        pairedSpeedup: r.pairedSpeedup,
        density: r.density,
        active: r.active ? 1 : 0,
        pagesSelected: r.pagesSelected,
        selectedKeys: r.selectedKeys,
        kvBytes: r.kvBytesDelta,
        fullLayers: r.roles.full,
        deltaLayers: r.roles.delta,
        sparseLayers: r.roles.sparse,
        ...(r.breakdown ?? {}),
        ...shape,
      },
    },
  ];
}
