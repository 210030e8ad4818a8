/**
 * A GPU decoder for this package's methods: the KV cache and the pooled windows live on the
 * device, and every step runs the method's selection and attention on the GPU over cache + new
 * tokens, like the CPU's `createCachedDecoder` does on the host. Only q and the new k/v go up;
 * output, lse and the step's selection come back.
 *
 * - K/V are a backend-gpu {@link GpuKVCache}: per KV slot one key and one value buffer of
 *   `capacity` rows, grown by doubling (old rows copied on the GPU), so a step uploads and writes
 *   only its T new rows: amortised O(T) per step instead of copying the whole cache into a buffer
 *   one step longer. Its view of a step is one resident chunk per KV slot; every kernel the
 *   methods run indexes keys as `slot · keySeq + key` with `keySeq` from its uniforms (never from
 *   a buffer's size), and with one slot per chunk the slot is 0, so buffers with spare rows read
 *   correctly.
 * - Pooled windows (the CPU's `BlockMeans`) are a {@link PooledWindowStore}: per KV slot the
 *   mean keys (and the key bounds for Quest scores, the mean values for NSA's gated compressed
 *   branch) of every complete window, also grown by doubling. A complete window never changes,
 *   so each step pools only the windows that became complete (the selection step's pooling
 *   kernel with `first` = windows already stored), not the whole cache. They are bit-identical
 *   to prefill's: the same kernel over the same keys.
 *
 * Steps validate with core's `validateDecoderStep` and plan (typed errors) before any GPU work.
 * As on the CPU, the cache keeps a step's tokens when its GPU work fails afterwards.
 */
import { ConfigError, densePairCount, sparseStats, validateDecoderStep, type AttentionDims, type AttentionResult, type DecoderShape } from '@sparse-attn/core';
import { countPairs, GpuKVCache, oneSubmissionRun, type GpuAttentionDecoder, type GpuBackend, type GpuSelection, type ResidentAttention, type ResidentChunk, type ResidentDecodeStepper, WEBGPU_FLAGS } from '@sparse-attn/backend-gpu';
import { completeWindows } from '../block-means.js';
import type { PoolingSpec } from '../cached-decoder.js';

const { STORAGE, COPY_DST, COPY_SRC } = WEBGPU_FLAGS;

type Buffer = ResidentChunk['out'];

/**
 * A decode step's pooled windows on the device, one buffer per chunk of the step's resident call
 * (one KV slot each, `[window][D]` with room for at least the step's windows). Windows below
 * `first` were pooled by earlier steps; the step's selection pools windows `first …` into them.
 */
export interface DecoderPool {
  /** Windows already pooled (complete before this step). */
  readonly first: number;
  /** Mean keys, `[window][D]` per KV slot. */
  readonly means: readonly Buffer[];
  /** Per-channel key bounds `[window][max D | min D]` per KV slot (NSA's Quest scores only). */
  readonly bounds: readonly Buffer[] | undefined;
  /** Mean values, `[window][Dv]` per KV slot (NSA's gated compressed branch only). */
  readonly values: readonly Buffer[] | undefined;
}

/** What a method runs for one decode step, planned (and validated) before any GPU work. */
export interface DecodeStepPlan {
  /** Largest per-KV-slot scratch of the step's kernels. */
  readonly extraBytesPerSlot: number;
  /**
   * Selection + attention on the step's resident call (one chunk per KV slot); the selection pools
   * windows `pool.first …` into `pool`'s buffers and reads every window from them. The decoder
   * frees the selection.
   */
  run(resident: ResidentAttention, pool: DecoderPool): Promise<{ selection: GpuSelection; selectionMs: number; attentionMs: number }>;
  /** Extra pairs the output attends beyond the selection (NSA gated's window branch). */
  readonly extraPairs?: number;
  /** The CPU decoder's diagnostics of the step (they depend on the geometry only). */
  readonly diagnostics?: Readonly<Record<string, number>>;
}

/** Options of {@link createGpuCachedDecoder}. */
export interface GpuDecoderOptions {
  /** Rows per KV head allocated up front (the cache doubles from there). Default 256. */
  readonly initialCapacity?: number;
}

/**
 * The pooled windows of a growing cache, per KV slot on the device: `capacity` windows per
 * buffer, doubled (copying the stored windows on the GPU) when a step needs more. Windows are
 * written by the methods' pooling kernels; {@link commit} records how many are complete.
 */
export class PooledWindowStore {
  private readonly device: GpuBackend['context']['device'];
  private readonly floats: { readonly means: number; readonly bounds: number; readonly values: number };
  private buffers: { means: Buffer[]; bounds: Buffer[]; values: Buffer[] };
  private capacity: number;
  private pooled = 0;

  constructor(
    private readonly backend: GpuBackend,
    private readonly slots: number,
    dims: { readonly headDim: number; readonly valueDim: number },
    spec: PoolingSpec,
    initialWindows: number,
  ) {
    this.device = backend.context.device;
    this.floats = { means: dims.headDim, bounds: spec.bounds ? 2 * dims.headDim : 0, values: spec.values ? dims.valueDim : 0 };
    this.capacity = Math.max(1, initialWindows);
    this.checkBinding(this.capacity);
    this.buffers = { means: this.allocate('means', this.capacity), bounds: this.allocate('bounds', this.capacity), values: this.allocate('values', this.capacity) };
  }

  /** Windows pooled and kept (complete before the coming step). */
  get windows(): number {
    return this.pooled;
  }

  /** Windows each buffer holds. */
  get windowCapacity(): number {
    return this.capacity;
  }

  /** Throws the `ConfigError` {@link reserve} would for `windows`, without touching the GPU. */
  check(windows: number): void {
    this.checkBinding(this.grown(windows));
  }

  /** Makes room for `windows` windows per slot (doubling; the stored windows are copied on the GPU). */
  reserve(windows: number): void {
    if (windows <= this.capacity) return;
    const capacity = this.grown(windows);
    this.checkBinding(capacity);
    const next = { means: this.allocate('means', capacity), bounds: this.allocate('bounds', capacity), values: this.allocate('values', capacity) };
    const encoder = this.device.createCommandEncoder();
    for (const name of ['means', 'bounds', 'values'] as const) {
      const bytes = 4 * this.pooled * this.floats[name];
      if (bytes > 0) for (let s = 0; s < this.slots; s++) encoder.copyBufferToBuffer(this.buffers[name][s]!, 0, next[name][s]!, 0, bytes);
    }
    this.device.queue.submit([encoder.finish()]);
    // A destroyed buffer lives until the work already submitted with it has run.
    this.destroyBuffers();
    this.buffers = next;
    this.capacity = capacity;
  }

  /** The buffers for a step whose selection pools windows from {@link windows} on. */
  view(): DecoderPool {
    return {
      first: this.pooled,
      means: this.buffers.means,
      bounds: this.floats.bounds > 0 ? this.buffers.bounds : undefined,
      values: this.floats.values > 0 ? this.buffers.values : undefined,
    };
  }

  /** Records that the windows below `windows` are pooled (after a step that pooled them). */
  commit(windows: number): void {
    this.pooled = windows;
  }

  /** Forgets every window (keeps the buffers). */
  reset(): void {
    this.pooled = 0;
  }

  /** Frees every buffer; the store cannot be used afterwards. */
  destroy(): void {
    this.destroyBuffers();
    this.buffers = { means: [], bounds: [], values: [] };
  }

  private grown(windows: number): number {
    let capacity = this.capacity;
    while (capacity < windows) capacity *= 2;
    return capacity;
  }

  private checkBinding(capacity: number): void {
    const bytes = 4 * capacity * Math.max(this.floats.means, this.floats.bounds, this.floats.values);
    if (bytes > this.backend.context.maxBinding) {
      throw new ConfigError(`GPU decoder: ${capacity} pooled windows of one KV head need ${bytes} bytes, above the device's largest buffer binding (${this.backend.context.maxBinding} bytes)`);
    }
  }

  private allocate(name: 'means' | 'bounds' | 'values', capacity: number): Buffer[] {
    const floats = this.floats[name];
    if (floats === 0) return [];
    return Array.from({ length: this.slots }, () => this.device.createBuffer({ size: Math.max(16, Math.ceil((4 * capacity * floats) / 16) * 16), usage: STORAGE | COPY_DST | COPY_SRC }));
  }

  private destroyBuffers(): void {
    for (const list of Object.values(this.buffers)) for (const b of list) b.destroy();
  }
}

/**
 * Decode steps with a decoder's kept pooled windows over a resident one-query call at the end of
 * its keys (the methods' `decodeResident`, what the benchmark's decode rows time): the first step
 * pools every complete window into buffers kept here, as a decoder that has seen the prefix holds
 * them; later steps pool none and read them. The density comes from the first step's selection
 * (read back after its timed work; later steps select the same blocks).
 */
export async function residentDecodeStepper(backend: GpuBackend, view: ResidentAttention, pooling: PoolingSpec, plan: DecodeStepPlan): Promise<ResidentDecodeStepper> {
  const d = view.dims;
  if (!d.causal || d.queryOffset + d.querySeq !== d.keySeq) throw new ConfigError('decodeResident: the call must be causal queries at the end of its keys (a decode step)');
  const windows = completeWindows(d.keySeq, pooling.length, pooling.stride);
  const make = (floats: number) => (floats === 0 ? undefined : view.chunks.map((c) => backend.context.device.createBuffer({ size: Math.max(16, 4 * c.slots * windows * floats), usage: STORAGE | COPY_DST | COPY_SRC })));
  const means = make(d.headDim)!;
  const bounds = make(pooling.bounds ? 2 * d.headDim : 0);
  const values = make(pooling.values ? d.valueDim : 0);
  let first = 0;
  let density: number | undefined;
  return {
    async step() {
      // Selection and attention as one submission, as a decoder step would run them: one round
      // trip to the GPU instead of one per call (only their sum is timed).
      const { value: run, run: timing } = await oneSubmissionRun(backend, () => plan.run(view, { first, means, bounds, values }));
      first = windows;
      try {
        // Every step of the same call selects the same blocks: read the selection back once (a
        // readback between steps slowed the next step's selection from 0.45 to ~1 ms on the H100).
        density ??= (countPairs(await backend.readSelection(run.selection), d) + (plan.extraPairs ?? 0)) / densePairCount(d);
        return { ...timing, density, phase: 'decode' };
      } finally {
        backend.releaseSelection(run.selection);
      }
    },
    release() {
      for (const b of [...means, ...(bounds ?? []), ...(values ?? [])]) b.destroy();
    },
  };
}

/**
 * Creates a GPU decoder; `pooling` is the method's window geometry (the CPU decoder's) and `plan`
 * turns a step's dims (cache + new tokens) into its GPU work.
 */
export function createGpuCachedDecoder(backend: GpuBackend, shape: DecoderShape, pooling: PoolingSpec, plan: (d: AttentionDims) => DecodeStepPlan, options: GpuDecoderOptions = {}): GpuAttentionDecoder {
  const valueDim = shape.valueDim ?? shape.headDim;
  const slots = shape.batch * shape.kvHeads;
  const initialCapacity = Math.max(1, options.initialCapacity ?? 256);
  const cache = new GpuKVCache(backend, { batch: shape.batch, kvHeads: shape.kvHeads, queryHeads: shape.queryHeads, headDim: shape.headDim, valueDim, initialCapacity });
  let store: PooledWindowStore;
  try {
    store = new PooledWindowStore(backend, slots, { headDim: shape.headDim, valueDim }, pooling, Math.ceil(initialCapacity / pooling.stride));
  } catch (error) {
    cache.destroy();
    throw error;
  }
  return {
    get length() {
      return cache.length;
    },
    async step(input): Promise<AttentionResult> {
      const length = cache.length;
      const step = validateDecoderStep(shape, input, length);
      const T = step.querySeq;
      const keySeq = length + T;
      const d: AttentionDims = {
        ...step,
        keySeq,
        queryOffset: length,
        kDims: { ...step.kDims, seq: keySeq, capacity: keySeq },
        vDims: { ...step.vDims, seq: keySeq, capacity: keySeq },
      };
      const p = plan(d);
      const perSlot = 4 * Math.max(d.groupSize * T * Math.max(d.headDim, valueDim), keySeq * Math.max(d.headDim, valueDim), p.extraBytesPerSlot);
      if (perSlot > backend.context.maxBinding) {
        throw new ConfigError(`GPU decoder: a KV slot's step needs ${perSlot} bytes in one buffer, above the device's largest binding (${backend.context.maxBinding})`);
      }
      const windows = completeWindows(keySeq, pooling.length, pooling.stride);
      store.check(windows);
      // GPU work from here (the cache throws its ConfigError for a capacity above a binding
      // before it allocates or writes anything): both grow by doubling, the cache takes the new rows.
      cache.append(input.k, input.v);
      store.reserve(windows);
      const view = cache.attend(input.q, d.scale);
      const resident: ResidentAttention = { dims: d, chunks: view.chunks };
      const run = await p.run(resident, store.view());
      try {
        store.commit(windows);
        const { output, lse } = await backend.readOutput(resident);
        const selection = await backend.readSelection(run.selection);
        const pairs = countPairs(selection, d) + (p.extraPairs ?? 0);
        const result = {
          output,
          lse,
          selection,
          stats: sparseStats(d, pairs, selection.headScope === 'kv', run.selectionMs, run.attentionMs),
          backend: backend.info,
          ...(p.diagnostics ? { diagnostics: p.diagnostics } : {}),
        };
        return result;
      } finally {
        backend.releaseSelection(run.selection);
      }
    },
    reset() {
      cache.reset();
      store.reset();
    },
    destroy() {
      cache.destroy();
      store.destroy();
    },
  };
}
