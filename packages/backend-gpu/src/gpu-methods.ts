import { densePairCount, denseMethod, parseConfig, type AttentionInput, type AttentionResult, type BackendName, type DecoderShape, type MethodDefinition, type Tensor } from '@sparse-attn/core';
import { blockTopKConfigSchema, blockTopKMethod } from './block-top-k.js';
import { countPairs, type GpuBackend, type GpuSelection, type GpuSelectionStep, type GpuTimings, type ResidentAttention } from './gpu-backend.js';
import { gpuBlockTopKDecoder, gpuDenseDecoder } from './gpu-decode.js';

/** A method bound to a GPU backend: core's `prefill`, asynchronous because readback is. */
export interface GpuAttentionMethod {
  readonly methodId: string;
  prefill(input: AttentionInput): Promise<AttentionResult>;
  /**
   * The GPU counterpart of core's `createDecoder`, where the method runs decode on the GPU: its
   * KV cache and per-sequence state live on the device.
   */
  createDecoder?(shape: DecoderShape, options?: GpuDecoderOptions): GpuAttentionDecoder;
  /**
   * Prefill on a resident call (q, k, v already on the GPU, e.g. from `backend.randomResident`;
   * the output goes to its chunks' `out`/`lse`), for benchmarks at sizes the host should not
   * build. Resolves with the time of the selection kernels and of attention, and the selection's
   * density (pairs scored / causal pairs) where the method knows it. Decode-time methods time one
   * decode step of the last query over the resident keys and say `phase: 'decode'` (the benchmark
   * then compares them with a dense decode step). `options.density: false` skips work done only
   * to report the density (reading the selection back to count its pairs); the benchmark asks
   * for it on its warm-up call and times the calls that skip it.
   */
  runResident?(resident: ResidentAttention, options?: ResidentRunOptions): Promise<ResidentRun>;
  /**
   * Decode steps with the state the method's GPU decoder keeps between steps (e.g. pooled
   * windows), over a resident one-query call at the end of its keys (`lastQueryView`): the
   * stepper's first `step()` builds the state as a decoder that has seen the prefix would hold
   * it, later steps reuse it, so a step does what a decoder step does short of appending its
   * token and reading the output back. The benchmark times decode rows with it where a method
   * has one (otherwise with `runResident` on the one-query call, which rebuilds all state).
   */
  decodeResident?(view: ResidentAttention): Promise<ResidentDecodeStepper>;
}

/** Options of {@link GpuAttentionMethod.runResident}. */
export interface ResidentRunOptions {
  /** Report the density even where that costs a readback (default true); false: only where the kernels count it anyway. */
  readonly density?: boolean;
  /**
   * Record the whole call into one queue submission (`GpuBackend.oneSubmission`), as an inference
   * runtime encodes a layer's attention: no host round trip between the selection and the
   * attention. Only their sum is timed then (the result says `oneSubmission: true`). Methods that
   * record their calls this way take it through {@link residentCall}; the others ignore it.
   */
  readonly oneSubmission?: boolean;
}

/**
 * Runs `body`, one `runResident` call made of separately timed GPU calls, as it is, or, when
 * `options.oneSubmission` asks for it, recorded into one submission: then `attentionMs` is the
 * whole call, `selectionMs` 0, `phases` dropped (nothing inside is timed on its own) and
 * `oneSubmission: true`. A density `body` reads back still comes (the read submits what was
 * recorded before it).
 */
export async function residentCall(backend: GpuBackend, options: ResidentRunOptions | undefined, body: () => Promise<ResidentRun>): Promise<ResidentRun> {
  if (!options?.oneSubmission) return body();
  const { value, run } = await oneSubmissionRun(backend, body);
  return {
    ...run,
    ...(value.density === undefined ? {} : { density: value.density }),
    ...(value.phase === undefined ? {} : { phase: value.phase }),
  };
}

/**
 * Runs a selection step then attention over it on a resident call: the exact sparse executor, or
 * `attend` (a family's own attention over the selection, resolving with its time). The caller
 * frees the selection; it is freed here when attention fails.
 */
export async function selectThenAttend(
  backend: GpuBackend,
  resident: ResidentAttention,
  step: GpuSelectionStep,
  attend: (resident: ResidentAttention, selection: GpuSelection) => Promise<number> = (r, s) => backend.runSparse(r, s),
): Promise<{ selection: GpuSelection; selectionMs: number; attentionMs: number }> {
  const { selection, ms: selectionMs } = await backend.runSelection(resident, step);
  try {
    return { selection, selectionMs, attentionMs: await attend(resident, selection) };
  } catch (error) {
    backend.releaseSelection(selection);
    throw error;
  }
}

/**
 * `body` recorded into one submission (`GpuBackend.oneSubmission`) and its timing as a
 * `ResidentRun`: `attentionMs` the whole call's wall time, `selectionMs` 0, `oneSubmission: true`,
 * and `gpuMs` where the device has timestamps. For decode steppers and calls that always submit once.
 */
export async function oneSubmissionRun<T>(backend: GpuBackend, body: () => Promise<T>): Promise<{ value: T; run: ResidentRun }> {
  const { value, ms, gpuMs } = await backend.oneSubmission(body);
  return { value, run: { selectionMs: 0, attentionMs: ms, oneSubmission: true, ...(gpuMs === undefined ? {} : { gpuMs }) } };
}

/**
 * What `runResident` resolves with. With `oneSubmission: true` the selection and the attention ran
 * as one submission (`GpuBackend.oneSubmission`), so only their sum is timed: `attentionMs` holds
 * it and `selectionMs` is 0.
 */
export type ResidentRun = GpuTimings & {
  /** GPU time of a one-submission call's passes (timestamp queries, no host encoding or wait), where the device has them. */
  readonly gpuMs?: number;
  readonly density?: number;
  readonly phase?: 'prefill' | 'decode';
  readonly phases?: Readonly<Record<string, number>>;
  readonly oneSubmission?: boolean;
};

/** Decode steps over a resident call with kept state (see {@link GpuAttentionMethod.decodeResident}). */
export interface ResidentDecodeStepper {
  /** One decode step of the call's query, timed (see `ResidentRun.oneSubmission`), the output in the call's `out`/`lse`. */
  step(): Promise<ResidentRun>;
  /** Frees the kept state. */
  release(): void;
}

/** Options of a GPU decoder (`GpuAttentionMethod.createDecoder`) that keeps its KV cache on the device. */
export interface GpuDecoderOptions {
  /** Rows per KV head allocated up front (the cache doubles from there). Default 256. */
  readonly initialCapacity?: number;
}

/** Core's `AttentionDecoder` on the GPU: asynchronous steps, and `destroy` frees its buffers. */
export interface GpuAttentionDecoder {
  /** Tokens in the cache. */
  readonly length: number;
  /** q `[B, Hq, T, D]`, k `[B, Hkv, T, D]`, v `[B, Hkv, T, Dv]` of the T new tokens, as in core. */
  step(input: AttentionInput): Promise<AttentionResult>;
  /**
   * Appends context tokens (k `[B, Hkv, T, D]`, v `[B, Hkv, T, Dv]`) to the cache without
   * attending to them, where the method's decoder can (a prompt's keys and values from a model's
   * earlier layers); absent where the decoder must see a prompt's queries (then a `step`).
   */
  appendContext?(k: Tensor, v: Tensor): void;
  /** Empties the cache and any per-sequence state. */
  reset(): void;
  /** Frees the decoder's GPU buffers. */
  destroy(): void;
}

/**
 * How a family opts in to `backend: 'gpu'`: a definition with the same id and config schema as
 * its CPU `MethodDefinition`, whose `create` binds a config to a {@link GpuBackend}. Its selection
 * and attention compose the backend's primitives (`blockTopKAttention`, or the family's own
 * selection followed by `backend.sparseAttention(input, selection)`), so results match the CPU
 * path to float32 rounding.
 */
export interface GpuMethodDefinition {
  readonly id: string;
  readonly family: string;
  /** The CPU definition this one mirrors (same config schema and budgets). */
  readonly cpu: MethodDefinition;
  create(backend: GpuBackend, config?: Record<string, unknown>): GpuAttentionMethod;
}

/**
 * Dense attention on the GPU (flash-style WGSL): the GPU baseline. Its decoder keeps the KV cache
 * on the device and decodes through the split-K kernel (`gpu-decode.ts`).
 */
export const gpuDenseMethod: GpuMethodDefinition = {
  id: 'dense',
  family: 'core',
  cpu: denseMethod,
  create: (backend) => ({
    methodId: 'dense',
    prefill: (input) => backend.denseAttention(input),
    createDecoder: (shape, options) => gpuDenseDecoder(backend, shape, options),
    runResident: async (resident) => ({ selectionMs: 0, attentionMs: await backend.runDense(resident), density: 1 }),
  }),
};

/**
 * The pooled-block top-k method with pooling, scoring, top-k and attention on the GPU; its decoder
 * keeps the KV cache on the device (`gpu-decode.ts`).
 */
export const gpuBlockTopKMethod: GpuMethodDefinition = {
  id: blockTopKMethod.id,
  family: blockTopKMethod.family,
  cpu: blockTopKMethod,
  create: (backend, config) => {
    const resolved = parseConfig(blockTopKMethod.id, blockTopKConfigSchema, config);
    return {
      methodId: blockTopKMethod.id,
      prefill: (input) => backend.blockTopKAttention(input, resolved),
      createDecoder: (shape, options) => gpuBlockTopKDecoder(backend, shape, resolved, options),
      runResident: (resident, options) =>
        residentCall(backend, options, async () => {
          const { selection, timings } = await backend.runBlockTopK(resident, resolved, { readSelection: options?.density !== false });
          return { ...timings, ...(selection ? { density: countPairs(selection, resident.dims) / densePairCount(resident.dims) } : {}) };
        }),
    };
  },
};

/** Every method this package runs on the GPU, for `bench --backend gpu`. */
export const gpuMethods: readonly GpuMethodDefinition[] = [gpuDenseMethod, gpuBlockTopKMethod];

/** The GPU definition of `id`, or `undefined` when the method runs on the CPU only. */
export function gpuMethod(id: string, backend: BackendName = 'gpu'): GpuMethodDefinition | undefined {
  return backend === 'gpu' ? gpuMethods.find((m) => m.id === id) : undefined;
}
