/**
 * `createCompressingDecoder` on the GPU: the KV cache stays on the host (core's `KVCache`) and
 * every step is uploaded again — a multi-token step whose cache exceeds the budget runs the GPU
 * compression ({@link compressedAttentionGpu}: scoring, selection and attention on the GPU) and
 * the cache then keeps exactly the entries the GPU chose (`KVCache.retain`); other steps run the
 * backend's dense attention over the whole (compressed) cache. Same decisions as the CPU decoder;
 * the cost is one upload of the cache per step (no device-resident cache yet).
 */
import { KVCache, validateDecoderStep, type AttentionInput, type AttentionResult, type DecoderShape } from '@sparse-attn/core';
import type { GpuAttentionDecoder, GpuBackend } from '@sparse-attn/backend-gpu';
import { compressedAttentionGpu, keptLists, type GpuCompressionPlanner } from './gpu-compression.js';

/** A GPU decoder whose cache may hold fewer entries than the tokens fed (the CPU `EvictingDecoder`). */
export interface GpuEvictingDecoder extends GpuAttentionDecoder {
  /** KV entries per head actually held (`length` counts the tokens fed, as on the CPU). */
  readonly cachedEntries: number;
}

/**
 * The plumbing both host-cache GPU decoders share: core's `KVCache` on the host, step validation,
 * appending the step's keys and values, the count of tokens fed, reset. `attend` runs the step's
 * queries over the call `{ q, k: every cached key, v, causal, scale }` and may evict (`cache.retain`).
 */
export function hostCacheDecoder(shape: DecoderShape, attend: (call: AttentionInput, cache: KVCache) => Promise<AttentionResult>): GpuEvictingDecoder {
  const cache = new KVCache({ batch: shape.batch, kvHeads: shape.kvHeads, headDim: shape.headDim, valueDim: shape.valueDim ?? shape.headDim });
  const scale = shape.scale ?? 1 / Math.sqrt(shape.headDim);
  let seen = 0;
  return {
    get length() {
      return seen;
    },
    get cachedEntries() {
      return cache.length;
    },
    async step(input: AttentionInput): Promise<AttentionResult> {
      validateDecoderStep(shape, input, cache.length);
      cache.append(input.k, input.v);
      seen += input.q.shape[2]!;
      return attend({ q: input.q, k: cache.keys(), v: cache.values(), causal: true, scale }, cache);
    },
    reset() {
      cache.reset();
      seen = 0;
    },
    destroy() {
      cache.reset();
    },
  };
}

/** The GPU counterpart of the CPU `createCompressingDecoder` for a compress-once method's planner. */
export function createGpuCompressingDecoder(backend: GpuBackend, shape: DecoderShape, planner: GpuCompressionPlanner): GpuEvictingDecoder {
  return hostCacheDecoder(shape, async (call, cache) => {
    const querySeq = call.q.shape[2]!;
    if (querySeq > 1 && planner(cache.length, querySeq).capacity < cache.length) {
      const result = await compressedAttentionGpu(backend, call, planner);
      cache.retain(keptLists(result.selection));
      return result;
    }
    return backend.denseAttention(call);
  });
}
