/**
 * Dense attention work run between timed decode steps, as in a model whose other layers keep the
 * GPU busy (the benchmarks' `…-loaded` rows). It changes two things a step sees: the clock (an
 * H100 that sees only short bursts of work with host round trips between them stays at its idle
 * SM clock, 345 MHz against 1980 MHz under sustained work: the `gpu-decoders` suite's real
 * decoders) and the caches (the load's tensors evict the step's: the `gpu-attention` suite, whose
 * prefill rows keep the GPU boosted).
 */
import type { AttentionDims } from '@sparse-attn/core';
import type { GpuBackend, ResidentAttention } from './gpu-backend.js';
import { measureAsync } from './measure-async.js';

/** Dims of a causal self-attention call (B = 1, MHA or GQA) whose data lives only on the GPU. */
export function causalDims(heads: number, seq: number, dim: number, kvHeads = heads): AttentionDims {
  const qDims = { batch: 1, heads, seq, dim, capacity: seq };
  const kvDims = { ...qDims, heads: kvHeads };
  return {
    batch: 1, queryHeads: heads, kvHeads, groupSize: heads / kvHeads, querySeq: seq, keySeq: seq, headDim: dim, valueDim: dim,
    causal: true, scale: 1 / Math.sqrt(dim), queryOffset: 0, qDims, kDims: kvDims, vDims: kvDims,
  };
}

/**
 * Work that keeps the GPU at its boost clock between timed steps: causal dense attention over a
 * resident call (4k tokens at H = 32, D = 128 by default: ~5 ms on an H100 at its boost clock), run
 * and waited for before each step of a loaded measurement; `warm` runs it for half a second first.
 */
export interface GpuLoad {
  run(): Promise<void>;
  warm(): Promise<void>;
  release(): void;
}

export async function gpuLoad(backend: GpuBackend, shape: { readonly heads: number; readonly headDim: number }, seq: number, seed: number): Promise<GpuLoad> {
  const resident: ResidentAttention = await backend.randomResident(causalDims(shape.heads, seq, shape.headDim), seed);
  const run = async () => {
    await backend.runDense(resident);
  };
  return {
    run,
    async warm() {
      for (const started = performance.now(); performance.now() - started < 500; ) await run();
    },
    release: () => backend.release(resident),
  };
}

/**
 * Median and MAD wall time of `step`; with `load`, the load runs for half a second first, then
 * before each call of `step` (untimed). `after` sees each call's value outside the timed span.
 */
export async function timeSteps<T>(step: () => Promise<T>, options: { readonly warmup: number; readonly repeats: number }, load?: GpuLoad, after?: (value: T) => void): Promise<{ medianMs: number; madMs: number }> {
  await load?.warm();
  return measureAsync(async () => {
    await load?.run();
    const started = performance.now();
    const value = await step();
    const ms = performance.now() - started;
    after?.(value);
    return ms;
  }, options);
}
