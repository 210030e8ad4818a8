/**
 * The nsa family's GPU decoders: backend-gpu's window decoder (`createGpuWindowDecoder`: the KV
 * cache and the pooled windows on the device, each step pooling only the windows that became
 * complete) with this package's pooled arrays — the mean keys of every window, plus the key
 * bounds for Quest scores and the mean values for NSA's gated compressed branch (the CPU's
 * `BlockMeans`) — handed to the methods' plans as a {@link DecoderPool}.
 */
import type { AttentionDims, DecoderShape } from '@sparse-attn/core';
import { createGpuWindowDecoder, residentWindowStepper, type GpuAttentionDecoder, type GpuBackend, type GpuSelection, type KeptWindows, type ResidentAttention, type ResidentChunk, type ResidentDecodeStepper, type GpuDecoderOptions, type WindowSpec, type WindowStepPlan } from '@sparse-attn/backend-gpu';
import type { PoolingSpec } from '../cached-decoder.js';

type Buffer = ResidentChunk['out'];

/**
 * A decode step's pooled windows on the device, one buffer per chunk of the step's resident call,
 * `[slot][window][D]` with exactly the step's windows per slot (compact, the layout a prefill's
 * pooling writes, whatever the chunk's `keyStride`). Windows below `first` were pooled by earlier
 * steps; the step's selection pools windows `first …` into them.
 */
export interface DecoderPool {
  /** Windows already pooled (complete before this step). */
  readonly first: number;
  /** Mean keys, `[window][D]` per KV slot of the chunk. */
  readonly means: readonly Buffer[];
  /** Per-channel key bounds `[window][max D | min D]` per KV slot of the chunk (NSA's Quest scores only). */
  readonly bounds: readonly Buffer[] | undefined;
  /** Mean values, `[window][Dv]` per KV slot of the chunk (NSA's gated compressed branch only). */
  readonly values: readonly Buffer[] | undefined;
}

type Pooled = 'means' | 'bounds' | 'values';

/**
 * What a method runs for one decode step, planned (and validated) before any GPU work: backend-gpu's
 * `WindowStepPlan` whose `run` takes the kept windows as a {@link DecoderPool} (the selection
 * pools windows `pool.first …` into `pool`'s buffers and reads every window from them; the decoder
 * frees the selection).
 */
export type DecodeStepPlan = Omit<WindowStepPlan<Pooled>, 'run'> & {
  run(resident: ResidentAttention, pool: DecoderPool): Promise<{ selection: GpuSelection; selectionMs: number; attentionMs: number }>;
};

/** The arrays the decoder keeps per window for `pooling`, in floats per window (0: not kept). */
export function pooledWindowSpec(pooling: PoolingSpec, dims: { readonly headDim: number; readonly valueDim: number }): WindowSpec<Pooled> {
  return { length: pooling.length, stride: pooling.stride, floats: { means: dims.headDim, bounds: pooling.bounds ? 2 * dims.headDim : 0, values: pooling.values ? dims.valueDim : 0 } };
}

/** The kept windows as the methods' {@link DecoderPool}. */
function decoderPool(kept: KeptWindows<Pooled>): DecoderPool {
  const { means, bounds, values } = kept.buffers;
  return { first: kept.first, means, bounds: bounds.length > 0 ? bounds : undefined, values: values.length > 0 ? values : undefined };
}

/** A method's step plan on backend-gpu's kept windows. */
function windowPlan(plan: DecodeStepPlan): WindowStepPlan<Pooled> {
  return { ...plan, run: (resident, kept) => plan.run(resident, decoderPool(kept)) };
}

/**
 * Decode steps with a decoder's kept pooled windows over a resident one-query call at the end of
 * its keys (the methods' `decodeResident`, what the benchmark's decode rows time): backend-gpu's
 * `residentWindowStepper` with this package's pooled arrays.
 */
export function residentDecodeStepper(backend: GpuBackend, view: ResidentAttention, pooling: PoolingSpec, plan: DecodeStepPlan): Promise<ResidentDecodeStepper> {
  return residentWindowStepper(backend, view, pooledWindowSpec(pooling, view.dims), windowPlan(plan));
}

/**
 * Creates a GPU decoder; `pooling` is the method's window geometry (the CPU decoder's) and `plan`
 * turns a step's dims (cache + new tokens) into its GPU work.
 */
export function createGpuCachedDecoder(backend: GpuBackend, shape: DecoderShape, pooling: PoolingSpec, plan: (d: AttentionDims) => DecodeStepPlan, options: GpuDecoderOptions = {}): GpuAttentionDecoder {
  const spec = pooledWindowSpec(pooling, { headDim: shape.headDim, valueDim: shape.valueDim ?? shape.headDim });
  return createGpuWindowDecoder(backend, shape, spec, (d) => windowPlan(plan(d)), options);
}
