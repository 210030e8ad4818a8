/**
 * GPU decoders whose methods keep per-window state (pooled keys, key bounds, block
 * representatives): the KV cache and that state live on the device, and every step runs the
 * method's selection and attention on the GPU over cache + new tokens. Only q and the new k/v go
 * up; output, lse and the step's selection come back.
 *
 * - K/V are a {@link GpuKVCache}: per KV slot one key and one value buffer of `capacity` rows,
 *   grown by doubling (old rows copied on the GPU), so a step uploads and writes only its T new
 *   rows. Its view of a step is one resident chunk per KV slot; kernels index keys as
 *   `slot · keySeq + key` with `keySeq` from their uniforms (never from a buffer's size), and with
 *   one slot per chunk the slot is 0, so buffers with spare rows read correctly.
 * - The per-window state is a {@link GpuWindowStore}: per KV slot one buffer per named array
 *   (`floats` per window), also grown by doubling. A complete window never changes, so each step
 *   pools only the windows that became complete since the last one (the method's pooling kernel
 *   from `first` = windows already stored), not the whole cache; they are bit-identical to a
 *   prefill's: the same kernel over the same keys.
 *
 * Used by the nsa family (pooled windows of NSA, MoBA, the hierarchical indexer) and the landmark
 * family (landmark retrieval's block representatives; landmark and HiP keep none,
 * {@link NO_WINDOWS}). Steps validate with core's
 * `validateDecoderStep` and plan (typed errors) before any GPU work; as on the CPU, the cache
 * keeps a step's tokens when its GPU work fails afterwards.
 */
import { assertFinite, ConfigError, densePairCount, sparseStats, validateDecoderStep, type AttentionDims, type AttentionResult, type DecoderShape, type Tensor } from '@sparse-attn/core';
import { countPairs, type GpuBackend, type GpuSelection, type ResidentAttention } from './gpu-backend.js';
import { GpuKVCache } from './gpu-kv-cache.js';
import { oneSubmissionRun, type GpuAttentionDecoder, type GpuDecoderOptions, type ResidentDecodeStepper } from './gpu-methods.js';
import { WEBGPU_FLAGS } from './webgpu-flags.js';

const { STORAGE, COPY_DST, COPY_SRC } = WEBGPU_FLAGS;

/** The windows a method keeps state for: `length` keys every `stride` keys, and what it keeps per window. */
export interface WindowSpec<N extends string> {
  /** Keys per window. */
  readonly length: number;
  /** Keys between window starts. */
  readonly stride: number;
  /** Floats per window of each kept array (0: the method does not keep it; its buffer list is empty). */
  readonly floats: Readonly<Record<N, number>>;
}

/** The spec of a decoder that keeps no per-window state (its KV cache only: landmark's, HiP's). */
export const NO_WINDOWS: WindowSpec<never> = { length: 1, stride: 1, floats: {} };

/** Complete windows of `length` keys every `stride` keys in a sequence of `keys`: floor((S − l) / d) + 1, 0 when S < l. */
export function completeWindowCount(keys: number, length: number, stride: number): number {
  return keys >= length ? Math.floor((keys - length) / stride) + 1 : 0;
}

/**
 * A step's kept windows: per chunk of its resident call one buffer per array, `[slot][window][floats]`
 * with exactly the step's windows per slot (the layout a prefill's pooling writes). Windows below
 * `first` were pooled by earlier steps; the step's selection pools windows `first …` into the
 * buffers and reads every window from them.
 */
export interface KeptWindows<N extends string> {
  readonly first: number;
  readonly buffers: Readonly<Record<N, readonly GPUBuffer[]>>;
}

/** What a method runs for one decode step, planned (and validated) before any GPU work. */
export interface WindowStepPlan<N extends string> {
  /** Largest per-KV-slot scratch of the step's kernels. */
  readonly extraBytesPerSlot: number;
  /**
   * Selection + attention on the step's resident call; the selection pools windows `kept.first …`
   * into the kept buffers and reads every window from them. The caller frees the selection.
   */
  run(resident: ResidentAttention, kept: KeptWindows<N>): Promise<{ selection: GpuSelection; selectionMs: number; attentionMs: number }>;
  /** Pairs the output attends beyond the selection (NSA gated's window branch). */
  readonly extraPairs?: number;
  /** The step's pairs where they do not follow from its selection (landmark's grouped softmax also scores landmark tokens); `extraPairs` is then ignored. */
  readonly pairs?: number;
  /** The kernel the step's result records, where it is not the backend's (landmark: `…+landmark-grouped-softmax`). */
  readonly kernel?: string;
  /** The CPU decoder's diagnostics of the step (they depend on the geometry only). */
  readonly diagnostics?: Readonly<Record<string, number>>;
}

/** Options of {@link createGpuWindowDecoder}. */
export interface GpuWindowDecoderOptions extends GpuDecoderOptions {
  /**
   * Checks `appendContext`'s tensors before anything is cached (the family's CPU decoder's
   * checks, for the same errors); by default the cache's shape checks and finite values.
   */
  readonly validateContext?: (k: Tensor, v: Tensor) => void;
}

/** A GPU decoder that also takes context without attending to it (its windows are pooled by the next step), as the CPU decoders of the landmark family. */
export type GpuWindowDecoder = GpuAttentionDecoder & Required<Pick<GpuAttentionDecoder, 'appendContext'>>;

/** The KV slots of one chunk of a resident call (its `slot0` and `slots`). */
export interface SlotGroup {
  readonly slot0: number;
  readonly slots: number;
}

interface WindowBuffers<N extends string> {
  readonly buffers: Record<N, GPUBuffer[]>;
  /** Windows per slot each buffer has room for. */
  readonly capacity: number;
  /** Slots of each chunk's buffers. */
  readonly groups: readonly number[];
}

/**
 * Per-window state of a growing cache on the device, per chunk of the cache's view one buffer per
 * named array, laid out `[slot][window][floats]` with exactly the coming step's windows per slot
 * (what the methods' kernels read, as in a prefill). A step that completes windows first moves
 * the stored ones to the new layout (GPU-side copies into a second set of buffers, which then
 * swap; both grow by doubling), and its pooling kernel writes the new ones. Windows are written by
 * the methods' pooling kernels; {@link commit} records how many are complete.
 */
export class GpuWindowStore<N extends string> {
  private readonly device: GPUDevice;
  private active: WindowBuffers<N>;
  private spare: WindowBuffers<N> | undefined;
  /** Windows per slot of the active layout. */
  private layout = 0;
  private pooled = 0;

  constructor(
    private readonly backend: GpuBackend,
    private readonly floats: Readonly<Record<N, number>>,
    initialWindows: number,
    groups: readonly SlotGroup[],
  ) {
    this.device = backend.context.device;
    const capacity = Math.max(1, initialWindows);
    const sizes = groups.map((g) => g.slots);
    this.checkBinding(capacity, sizes);
    this.active = this.allocate(capacity, sizes);
  }

  /** Windows pooled and kept (complete before the coming step). */
  get windows(): number {
    return this.pooled;
  }

  /** Windows per slot the active buffers have room for. */
  get windowCapacity(): number {
    return this.active.capacity;
  }

  /** Throws the `ConfigError` {@link prepare} would for `windows` over chunks of `slotsPerChunk` slots, without touching the GPU. */
  check(windows: number, slotsPerChunk: number): void {
    this.checkBinding(this.grown(windows), [slotsPerChunk]);
  }

  /**
   * The buffers for a step over chunks `groups` whose selection pools windows from
   * {@link windows} up to `windows`: laid out for `windows` per slot, the stored windows moved there
   * on the GPU when the layout (or the chunking) changes.
   */
  prepare(windows: number, groups: readonly SlotGroup[]): KeptWindows<N> {
    const sizes = groups.map((g) => g.slots);
    const same = (a: readonly number[]) => a.length === sizes.length && a.every((x, i) => x === sizes[i]);
    const count = Math.min(this.pooled, windows);
    const needed = Math.max(windows, 1);
    // Nothing to move (no stored windows, or one slot per buffer: window w is at w in any layout).
    const inPlace = same(this.active.groups) && this.active.capacity >= needed && (count === 0 || sizes.every((x) => x === 1));
    if (inPlace) this.layout = windows;
    else if (windows !== this.layout || !same(this.active.groups)) {
      let target = this.spare;
      if (!target || target.capacity < needed || !same(target.groups)) {
        const capacity = this.grown(needed);
        this.checkBinding(capacity, sizes);
        if (target) this.destroyBuffers(target);
        target = this.allocate(capacity, sizes);
      }
      this.move(this.active, target, groups, count, windows);
      // The old buffers are the next step's target; grown now with the new ones, so that a
      // doubling allocates in one step, not in two.
      let spare = this.active;
      if (spare.capacity < target.capacity || !same(spare.groups)) {
        this.destroyBuffers(spare);
        spare = this.allocate(target.capacity, sizes);
      }
      this.spare = spare;
      this.active = target;
      this.layout = windows;
    }
    return { first: count, buffers: this.active.buffers };
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
    this.destroyBuffers(this.active);
    if (this.spare) this.destroyBuffers(this.spare);
    this.spare = undefined;
    this.active = { buffers: this.empty(), capacity: 0, groups: [] };
  }

  /** Copies the `count` stored windows of every slot from `from`'s layout (`this.layout` per slot) to `to`'s (`windows` per slot). */
  private move(from: WindowBuffers<N>, to: WindowBuffers<N>, groups: readonly SlotGroup[], count: number, windows: number): void {
    if (count === 0) return;
    const starts: number[] = [];
    let at = 0;
    for (const slots of from.groups) {
      starts.push(at);
      at += slots;
    }
    const encoder = this.device.createCommandEncoder();
    for (const name of this.names()) {
      const bytes = 4 * this.floats[name];
      if (bytes === 0) continue;
      for (const [c, group] of groups.entries()) {
        for (let local = 0; local < group.slots; local++) {
          const slot = group.slot0 + local;
          let source = starts.length - 1;
          while (starts[source]! > slot) source--;
          const fromSlot = slot - starts[source]!;
          encoder.copyBufferToBuffer(from.buffers[name][source]!, fromSlot * this.layout * bytes, to.buffers[name][c]!, local * windows * bytes, count * bytes);
        }
      }
    }
    this.device.queue.submit([encoder.finish()]);
  }

  private names(): N[] {
    return Object.keys(this.floats) as N[];
  }

  private empty(): Record<N, GPUBuffer[]> {
    return Object.fromEntries(this.names().map((name) => [name, []])) as unknown as Record<N, GPUBuffer[]>;
  }

  private grown(windows: number): number {
    let capacity = Math.max(1, this.active.capacity);
    while (capacity < windows) capacity *= 2;
    return capacity;
  }

  private checkBinding(capacity: number, groups: readonly number[]): void {
    const bytes = 4 * capacity * Math.max(1, ...groups) * Math.max(0, ...Object.values<number>(this.floats));
    if (bytes > this.backend.context.maxBinding) {
      throw new ConfigError(`GPU decoder: ${capacity} pooled windows of ${Math.max(1, ...groups)} KV heads need ${bytes} bytes, above the device's largest buffer binding (${this.backend.context.maxBinding} bytes)`);
    }
  }

  private allocate(capacity: number, groups: readonly number[]): WindowBuffers<N> {
    const buffers = this.empty();
    for (const name of this.names()) {
      const floats = this.floats[name];
      if (floats > 0) buffers[name] = groups.map((slots) => this.device.createBuffer({ size: Math.max(16, Math.ceil((4 * slots * capacity * floats) / 16) * 16), usage: STORAGE | COPY_DST | COPY_SRC }));
    }
    return { buffers, capacity, groups };
  }

  private destroyBuffers(set: WindowBuffers<N>): void {
    // A destroyed buffer lives until the work already submitted with it has run.
    for (const name of this.names()) for (const b of set.buffers[name]) b.destroy();
  }
}

/** `reset` and `destroy` of a decoder that keeps a KV cache and a window store: both together. */
export function cacheStoreLifecycle(cache: GpuKVCache, store: GpuWindowStore<string>): Pick<GpuAttentionDecoder, 'reset' | 'destroy'> {
  return {
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

/** A window store for `cache`'s chunks (its slot groups), with room for `initialWindows` windows per slot. */
export function cacheWindowStore<N extends string>(backend: GpuBackend, cache: GpuKVCache, floats: Readonly<Record<N, number>>, initialWindows: number): GpuWindowStore<N> {
  const slots = cache.batch * cache.kvHeads;
  const groups: SlotGroup[] = [];
  for (let slot0 = 0; slot0 < slots; slot0 += cache.chunkSlots) groups.push({ slot0, slots: Math.min(cache.chunkSlots, slots - slot0) });
  return new GpuWindowStore(backend, floats, initialWindows, groups);
}

/**
 * Decode steps with a decoder's kept windows over a resident one-query call at the end of its
 * keys (a method's `decodeResident`, what the benchmark's decode rows time): the first step pools
 * every complete window into buffers kept here, as a decoder that has seen the prefix holds them;
 * later steps pool none and read them. Selection and attention run as one submission. The
 * density comes from the first step's selection (read back after its timed work; later steps
 * select the same blocks).
 */
export async function residentWindowStepper<N extends string>(backend: GpuBackend, view: ResidentAttention, spec: WindowSpec<N>, plan: WindowStepPlan<N>): Promise<ResidentDecodeStepper> {
  const d = view.dims;
  if (!d.causal || d.queryOffset + d.querySeq !== d.keySeq) throw new ConfigError('decodeResident: the call must be causal queries at the end of its keys (a decode step)');
  const windows = completeWindowCount(d.keySeq, spec.length, spec.stride);
  const names = Object.keys(spec.floats) as N[];
  const buffers = Object.fromEntries(
    names.map((name) => {
      const floats = spec.floats[name];
      return [name, floats === 0 ? [] : view.chunks.map((c) => backend.context.device.createBuffer({ size: Math.max(16, 4 * c.slots * windows * floats), usage: STORAGE | COPY_DST | COPY_SRC }))];
    }),
  ) as unknown as Record<N, GPUBuffer[]>;
  let first = 0;
  let density: number | undefined;
  return {
    async step() {
      // Selection and attention as one submission, as a decoder step would run them: one round
      // trip to the GPU instead of one per call (only their sum is timed).
      const { value: run, run: timing } = await oneSubmissionRun(backend, () => plan.run(view, { first, buffers }));
      first = windows;
      try {
        // Every step of the same call selects the same blocks: read the selection back once (a
        // readback between steps slowed the next step's selection from 0.45 to ~1 ms on the H100).
        density ??= (plan.pairs ?? countPairs(await backend.readSelection(run.selection), d) + (plan.extraPairs ?? 0)) / densePairCount(d);
        return { ...timing, density, phase: 'decode' };
      } finally {
        backend.releaseSelection(run.selection);
      }
    },
    release() {
      for (const name of names) for (const b of buffers[name]) b.destroy();
    },
  };
}

/**
 * Creates a GPU decoder; `spec` is the method's window geometry (the CPU decoder's) and `plan`
 * turns a step's dims (cache + new tokens) into its GPU work.
 */
export function createGpuWindowDecoder<N extends string>(
  backend: GpuBackend,
  shape: DecoderShape,
  spec: WindowSpec<N>,
  plan: (d: AttentionDims) => WindowStepPlan<N>,
  options: GpuWindowDecoderOptions = {},
): GpuWindowDecoder {
  const valueDim = shape.valueDim ?? shape.headDim;
  const initialCapacity = Math.max(1, options.initialCapacity ?? 256);
  const cache = new GpuKVCache(backend, { batch: shape.batch, kvHeads: shape.kvHeads, queryHeads: shape.queryHeads, headDim: shape.headDim, valueDim, initialCapacity });
  let store: GpuWindowStore<N>;
  try {
    store = cacheWindowStore(backend, cache, spec.floats, Math.ceil(initialCapacity / spec.stride));
  } catch (error) {
    cache.destroy();
    throw error;
  }
  const validateContext =
    options.validateContext ??
    ((k: Tensor, v: Tensor) => {
      assertFinite(k, 'k');
      assertFinite(v, 'v');
    });
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
      const windows = completeWindowCount(keySeq, spec.length, spec.stride);
      store.check(windows, cache.chunkSlots);
      // GPU work from here (the cache throws its ConfigError for a capacity above a binding
      // before it allocates or writes anything): both grow by doubling, the cache takes the new rows.
      cache.append(input.k, input.v);
      const view = cache.attend(input.q, d.scale, p.extraBytesPerSlot);
      const resident: ResidentAttention = { dims: d, chunks: view.chunks };
      const kept = store.prepare(windows, view.chunks);
      // Selection, attention and the readback of output, lse and the step's selection as one
      // submission: one round trip to the GPU per step (timed as a whole).
      const { value: results, ms } = await backend.oneSubmission(async () => {
        const run = await p.run(resident, kept);
        try {
          return await backend.readResults(resident, run.selection);
        } finally {
          backend.releaseSelection(run.selection);
        }
      });
      store.commit(windows);
      const { output, lse, selection } = results;
      const pairs = p.pairs ?? countPairs(selection, d) + (p.extraPairs ?? 0);
      // The output's lse rides along (as the other GPU decoders' results carry it).
      const result = {
        output,
        lse,
        selection,
        stats: sparseStats(d, pairs, selection.headScope === 'kv', 0, ms),
        backend: p.kernel === undefined ? backend.info : { ...backend.info, kernel: p.kernel },
        ...(p.diagnostics ? { diagnostics: p.diagnostics } : {}),
      };
      return result;
    },
    appendContext(k, v) {
      validateContext(k, v);
      cache.append(k, v);
    },
    ...cacheStoreLifecycle(cache, store),
  };
}
