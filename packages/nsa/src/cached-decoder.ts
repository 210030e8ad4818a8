import {
  ConfigError,
  KVCache,
  assertFinite,
  validateAttentionInput,
  validateDecoderStep,
  type AttentionDecoder,
  type AttentionDims,
  type AttentionInput,
  type AttentionResult,
  type DecoderShape,
  type Tensor,
} from '@sparse-attn/core';
import { BlockMeans } from './block-means.js';

/** The attention of one call: queries aligned to the end of the keys, dims already validated. */
export interface ForwardCall {
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly dims: AttentionDims;
  /** Pooled windows of `k` (and `v`), complete up to `dims.keySeq`. */
  readonly means: BlockMeans;
}

/** Which windows a method pools: length `l`, stride `d`, and whether values are pooled too. */
export interface PoolingSpec {
  readonly length: number;
  readonly stride: number;
  readonly values: boolean;
  /** Also keep per-window key bounds (NSA's Quest-style compression score). */
  readonly bounds?: boolean;
}

/** Non-overlapping mean-pooled key blocks of `blockSize` (MoBA's and the hierarchical indexer's). */
export function blockPooling(blockSize: number): PoolingSpec {
  return { length: blockSize, stride: blockSize, values: false };
}

/**
 * A decoder over core's `KVCache` plus an incrementally pooled window store. Besides the
 * `AttentionDecoder` contract it can be primed with context whose outputs are not needed.
 */
export interface CachedDecoder<Extra = undefined> extends AttentionDecoder {
  /** Attends the new tokens; `extra` carries method-specific per-step inputs (NSA's gate tensor). */
  step(input: AttentionInput, extra?: Extra): AttentionResult;
  /**
   * Appends context keys `[B, Hkv, T, D]` and values `[B, Hkv, T, Dv]` without computing their
   * attention outputs: for a prompt whose outputs were computed elsewhere (or by a chunked
   * prefill on another device), and for benchmarks that need a long cache. Later steps return
   * exactly what they would after stepping through the same tokens.
   */
  prime(k: Tensor, v: Tensor): void;
}

/** Creates the pooled-window store a call over `dims` needs. */
export function createMeans(dims: Pick<AttentionDims, 'batch' | 'kvHeads' | 'headDim' | 'valueDim'>, pooling: PoolingSpec, capacity = 16): BlockMeans {
  return new BlockMeans(
    { batch: dims.batch, heads: dims.kvHeads, headDim: dims.headDim, valueDim: pooling.values ? dims.valueDim : undefined, bounds: pooling.bounds ?? false, length: pooling.length, stride: pooling.stride },
    capacity,
  );
}

/**
 * Runs a prefill: validates the input (typed errors, NaN scan), rejects non-causal calls (every
 * method of this package is causal), pools the keys and runs `forward`.
 */
export function runPrefill<Extra>(
  methodId: string,
  input: AttentionInput,
  pooling: PoolingSpec,
  forward: (call: ForwardCall, extra?: Extra) => AttentionResult,
  extra?: Extra,
): AttentionResult {
  const dims = validateAttentionInput(input);
  if (!dims.causal) throw new ConfigError(`${methodId}: causal must be true (the method selects among past keys only), got causal: false`);
  const means = createMeans(dims, pooling, Math.max(1, Math.ceil(dims.keySeq / pooling.stride)));
  means.extend(input.k, pooling.values ? input.v : undefined);
  return forward({ q: input.q, k: input.k, v: input.v, dims, means }, extra);
}

/**
 * A decoder whose steps append to a `KVCache`, pool the windows that became complete (O(new
 * tokens) work, the prompt's windows are never recomputed) and run `forward` on cache views, so
 * a step reads only the KV rows its selection names.
 */
export function createCachedDecoder<Extra = undefined>(
  shape: DecoderShape,
  pooling: PoolingSpec,
  forward: (call: ForwardCall, extra?: Extra) => AttentionResult,
): CachedDecoder<Extra> {
  const valueDim = shape.valueDim ?? shape.headDim;
  const cache = new KVCache({ batch: shape.batch, kvHeads: shape.kvHeads, headDim: shape.headDim, valueDim });
  let means = createMeans({ batch: shape.batch, kvHeads: shape.kvHeads, headDim: shape.headDim, valueDim }, pooling);
  const pool = () => means.extend(cache.keys(), pooling.values ? cache.values() : undefined);
  return {
    get length() {
      return cache.length;
    },
    step(input, extra) {
      validateDecoderStep(shape, input, cache.length);
      cache.append(input.k, input.v);
      pool();
      const k = cache.keys();
      const v = cache.values();
      const dims = validateAttentionInput({ q: input.q, k, v, causal: true, scale: shape.scale }, { checkFinite: false });
      return forward({ q: input.q, k, v, dims, means }, extra);
    },
    prime(k, v) {
      assertFinite(k, 'k');
      assertFinite(v, 'v');
      cache.append(k, v);
      pool();
    },
    reset() {
      cache.reset();
      means = createMeans({ batch: shape.batch, kvHeads: shape.kvHeads, headDim: shape.headDim, valueDim }, pooling);
    },
  };
}
