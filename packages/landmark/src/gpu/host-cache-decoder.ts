/**
 * Plumbing the family's GPU methods share: a decoder over a host KV cache (the CPU decoders'
 * `createCachedDecoder` wiring, asynchronous), a causal check, and running a selection step
 * on resident buffers with its rows released afterwards.
 */
import {
  ConfigError,
  KVCache,
  validateDecoderStep,
  type AttentionInput,
  type AttentionResult,
  type DecoderShape,
  type Tensor,
} from '@sparse-attn/core';
import type { GpuAttentionDecoder, GpuBackend, GpuSelection, GpuSelectionStep, ResidentAttention } from '@sparse-attn/backend-gpu';
import { validateContext } from '../cached-decoder.js';

/** A GPU decoder that also takes context without attending to it, as the CPU `CachedDecoder`. */
export type HostCacheDecoder = GpuAttentionDecoder & { appendContext(k: Tensor, v: Tensor): void };

/**
 * A GPU decoder whose KV cache stays on the host (core's `KVCache`) and is handed whole to
 * `attend` every step, as a causal call over the cache (the new queries are its last
 * positions). `step` validates only the new tokens, as the CPU decoders do; `appendContext`
 * validates like `createCachedDecoder`. `resetState` clears the caller's per-sequence state
 * on `reset`. Nothing stays on the GPU between steps, so `destroy` frees nothing.
 */
export function createHostCacheDecoder(
  shape: DecoderShape,
  attend: (call: AttentionInput) => Promise<AttentionResult>,
  resetState?: () => void,
): HostCacheDecoder {
  const valueDim = shape.valueDim ?? shape.headDim;
  const cache = new KVCache({ batch: shape.batch, kvHeads: shape.kvHeads, headDim: shape.headDim, valueDim });
  return {
    get length() {
      return cache.length;
    },
    async step(input) {
      validateDecoderStep(shape, input, cache.length);
      cache.append(input.k, input.v);
      return attend({ q: input.q, k: cache.keys(), v: cache.values(), causal: true, ...(shape.scale === undefined ? {} : { scale: shape.scale }) });
    },
    appendContext(k, v) {
      validateContext(shape, k, v);
      cache.append(k, v);
    },
    reset() {
      cache.reset();
      resetState?.();
    },
    destroy() {
      // Nothing stays on the GPU between steps.
    },
  };
}

/** Throws `<methodId>: causal must be true[ (why)], got false` for a non-causal call. */
export function requireCausal(methodId: string, causal: boolean, why?: string): void {
  if (!causal) throw new ConfigError(`${methodId}: causal must be true${why === undefined ? '' : ` (${why})`}, got false`);
}

/**
 * Runs a selection step on a resident call and hands its rows (and the step's time) to `use`;
 * the rows are released when `use` settles, whether or not it throws.
 */
export async function withGpuSelection<T>(
  backend: GpuBackend,
  resident: ResidentAttention,
  step: GpuSelectionStep,
  use: (selection: GpuSelection, selectionMs: number) => Promise<T>,
): Promise<T> {
  const { selection, ms } = await backend.runSelection(resident, step);
  try {
    return await use(selection, ms);
  } finally {
    backend.releaseSelection(selection);
  }
}
