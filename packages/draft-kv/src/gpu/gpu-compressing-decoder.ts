/**
 * The KV-dropping decoders on the GPU: the KV cache is a `GpuKVCache` on the device (a step
 * uploads only its own tokens), each step runs the method's attention on the cache's view, and a
 * method that evicts keeps its chosen rows with `GpuKVCache.retain` (a gather on the GPU): the
 * cache really shrinks, as the CPU decoder's `KVCache.retain` makes it. A compress-once method's
 * multi-token step whose cache exceeds the budget runs the GPU compression (scoring, selection and
 * attention; {@link compressionStep}) and keeps exactly the entries it chose; other steps attend
 * densely over the whole (compressed) cache (split-K for up to 16 queries a head). Same decisions
 * as the CPU decoders.
 */
import { validateDecoderStep, type AttentionDims, type AttentionInput, type AttentionResult, type DecoderShape, type Tensor } from '@sparse-attn/core';
import {
  appendChecked,
  decoderCache,
  denseStep,
  denseStepScratchBytesPerSlot,
  selectionResult,
  type GpuAttentionDecoder,
  type GpuBackend,
  type GpuDecoderOptions,
  type ResidentAttention,
} from '@sparse-attn/backend-gpu';
import { compressionScratchBytesPerSlot, compressionStep, keptLists, type GpuCompressionPlanner } from './gpu-compression.js';

/** A GPU decoder whose cache may hold fewer entries than the tokens fed (the CPU `EvictingDecoder`). */
export interface GpuEvictingDecoder extends GpuAttentionDecoder {
  /** KV entries per head actually held (`length` counts the tokens fed, as on the CPU). */
  readonly cachedEntries: number;
}

/** A step's attention on the cache's view, and the rows every KV slot keeps afterwards (none: all). */
export interface EvictingStep {
  readonly result: AttentionResult;
  readonly keep?: Int32Array | readonly Int32Array[];
}

/** How an evicting decoder attends: the scratch its kernels need per KV slot, and the step on the cache's view. */
export interface EvictingAttention {
  scratchBytesPerSlot(d: AttentionDims): number;
  attend(view: ResidentAttention): Promise<EvictingStep>;
  /**
   * For a method whose eviction does not depend on the queries (StreamingLLM): the rows every KV
   * slot keeps once the cache holds `entries` (none: all). The decoder then has `appendContext`.
   */
  retained?(entries: number): Int32Array | undefined;
}

/**
 * The plumbing both KV-dropping GPU decoders share: a `GpuKVCache`, step validation, appending the
 * step's keys and values, the count of tokens fed, eviction and reset. A step's queries attend
 * over every cached key (causal, the new tokens last); `attend` may return the rows to keep.
 */
export function deviceCacheDecoder(backend: GpuBackend, shape: DecoderShape, attention: EvictingAttention, options: GpuDecoderOptions = {}): GpuEvictingDecoder {
  const cache = decoderCache(backend, shape, options);
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
      const step = validateDecoderStep(shape, input, cache.length);
      cache.append(input.k, input.v);
      seen += step.querySeq;
      const view = cache.attend(input.q, scale, attention.scratchBytesPerSlot(cache.dims(step.querySeq, scale)));
      const { result, keep } = await attention.attend(view);
      if (keep) cache.retain(keep);
      return result;
    },
    ...(attention.retained
      ? {
          // Context without queries: cached, then evicted as a step over it would leave the cache.
          appendContext(k: Tensor, v: Tensor) {
            appendChecked(cache, k, v);
            seen += k.shape[2]!;
            const keep = attention.retained!(cache.length);
            if (keep) cache.retain(keep);
          },
        }
      : {}),
    reset() {
      cache.reset();
      seen = 0;
    },
    destroy() {
      cache.destroy();
    },
  };
}

/** The GPU counterpart of the CPU `createCompressingDecoder` for a compress-once method's planner. */
export function createGpuCompressingDecoder(backend: GpuBackend, shape: DecoderShape, planner: GpuCompressionPlanner, options: GpuDecoderOptions = {}): GpuEvictingDecoder {
  const compresses = (d: Pick<AttentionDims, 'keySeq' | 'querySeq'>) => d.querySeq > 1 && planner(d.keySeq, d.querySeq).capacity < d.keySeq;
  return deviceCacheDecoder(
    backend,
    shape,
    {
      scratchBytesPerSlot: (d) => (compresses(d) ? compressionScratchBytesPerSlot(planner(d.keySeq, d.querySeq), d) : denseStepScratchBytesPerSlot(d)),
      async attend(view) {
        const d = view.dims;
        if (!compresses(d)) return { result: await denseStep(backend, view) };
        const step = compressionStep(planner(d.keySeq, d.querySeq), d);
        // Scoring, selection, attention and the readback of output, lse and the kept entries: one submission.
        const { value, ms } = await backend.oneSubmission(async () => {
          const { selection } = await backend.runSelection(view, step);
          try {
            await backend.runSparse(view, selection);
            return await backend.readResults(view, selection);
          } finally {
            backend.releaseSelection(selection);
          }
        });
        const result = selectionResult(d, value, value.selection, { selectionMs: 0, attentionMs: ms }, backend.info, { keptPerHead: step.stride, keptShare: step.stride / d.keySeq });
        return { result, keep: keptLists(value.selection) };
      },
    },
    options,
  );
}
