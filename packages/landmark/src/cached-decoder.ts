import {
  KVCache,
  ShapeError,
  assertFinite,
  validateDecoderStep,
  type AttentionDecoder,
  type AttentionResult,
  type DecoderShape,
  type Tensor,
} from '@sparse-attn/core';

/**
 * A decoder over core's {@link KVCache} whose per-sequence retrieval state (block
 * representatives, landmark keys, an ANN index) is updated incrementally as keys arrive.
 */
export interface CachedDecoder extends AttentionDecoder {
  /**
   * Appends context keys `[B, Hkv, T, D]` and values `[B, Hkv, T, Dv]` without computing any
   * output, updating the retrieval state as `step` would. Lets a runtime (or a benchmark) load a
   * long prompt whose attention was computed elsewhere, then time only decode steps.
   */
  appendContext(k: Tensor, v: Tensor): void;
}

/** The method-specific half of a {@link CachedDecoder}. */
export interface DecoderState {
  /** Called after `cache` grew from `previousLength` tokens; update incremental state here. */
  afterAppend(cache: KVCache, previousLength: number): void;
  /** Attends the new queries `q` (the last `q.shape[2]` positions of the cache). */
  attend(q: Tensor, cache: KVCache): AttentionResult;
  /** Clears per-sequence state. */
  reset(): void;
}

/**
 * Checks `appendContext`'s keys `[B, Hkv, T, D]` and values `[B, Hkv, T, Dv]` against the
 * decoder's shape (a `ShapeError` naming the tensor) and that they are finite. Shared by the CPU
 * decoders and the GPU ones (backend-gpu's window decoder, given this check), which take the same context.
 */
export function validateContext(shape: DecoderShape, k: Tensor, v: Tensor): void {
  const valueDim = shape.valueDim ?? shape.headDim;
  const expect = (name: string, t: Tensor, dim: number) => {
    const s = t.shape;
    if (s.length !== 4 || s[0] !== shape.batch || s[1] !== shape.kvHeads || s[3] !== dim) {
      throw new ShapeError(`appendContext: ${name} must be [${shape.batch}, ${shape.kvHeads}, T, ${dim}], got [${s.join(', ')}]`);
    }
  };
  expect('k', k, shape.headDim);
  expect('v', v, valueDim);
  assertFinite(k, 'k');
  assertFinite(v, 'v');
}

/**
 * Wires validation, the KV cache and a method's state into a decoder: `step` validates the new
 * tokens (only them: the cache was checked when it was appended), appends, updates state, attends.
 */
export function createCachedDecoder(shape: DecoderShape, state: DecoderState): CachedDecoder {
  const valueDim = shape.valueDim ?? shape.headDim;
  const cache = new KVCache({ batch: shape.batch, kvHeads: shape.kvHeads, headDim: shape.headDim, valueDim });
  return {
    get length() {
      return cache.length;
    },
    step(input) {
      validateDecoderStep(shape, input, cache.length);
      const previous = cache.length;
      cache.append(input.k, input.v);
      state.afterAppend(cache, previous);
      return state.attend(input.q, cache);
    },
    appendContext(k, v) {
      validateContext(shape, k, v);
      const previous = cache.length;
      cache.append(k, v);
      state.afterAppend(cache, previous);
    },
    reset() {
      cache.reset();
      state.reset();
    },
  };
}
